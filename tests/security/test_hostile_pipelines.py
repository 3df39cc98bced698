"""Hostile pipelines, tried the way an attacker would: every escape fails, the server keeps going.

Each probe pipeline bypasses the Python guard-rails first (they are not the boundary) and then
tries to reach the server's secrets, the state database, the network, other tables and the host.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conftest import RatServer, unique, wait_run
from tests.security.hostile import attacks, probe_pipeline

HOST_FILES = ("/tmp/rat_pwned", "/tmp/rat_copy.csv", "/tmp/rat_shell")
# Reading tables of one's own namespace is allowed in the community edition (one user).
ALLOWED = {"read another table"}


def _create(client: httpx.Client, layer: str, name: str, source: str,
            kind: str = "python") -> None:
    resp = client.post("/pipelines", json={"namespace": "default", "layer": layer, "name": name,
                                           "type": kind, "source": source})
    assert resp.status_code == 201, resp.text


def _run(client: httpx.Client, layer: str, name: str, timeout: float = 120) -> dict[str, object]:
    resp = client.post("/runs", json={"namespace": "default", "layer": layer, "pipeline": name})
    assert resp.status_code == 202, resp.text
    return wait_run(client, resp.json()["run_id"], timeout=timeout)


def _victim(server: RatServer, client: httpx.Client) -> str:
    """Another pipeline's published table: its data directory on local storage."""
    name = unique("victim")
    _create(client, "bronze", name, "SELECT 42 AS secret", kind="sql")
    assert _run(client, "bronze", name)["status"] == "success"
    return str(server.data_dir / "storage" / "_warehouse" / "default" / "bronze" / name)


def _attacks(server: RatServer, other_table: str) -> dict[str, str]:
    pg_socket = parse_qs(urlsplit(server.dsn).query).get("host", ["/nonexistent"])[0]
    assert server.proc is not None
    found = attacks(data_dir=str(server.data_dir), server_pid=server.proc.pid,
                    server_port=server.port, other_table=other_table, pg_socket_dir=pg_socket)
    found["fork bomb"] = (
        "kids = []\n"
        "try:\n"
        "    for i in range(400):\n"
        "        pid = os.fork()\n"
        "        if pid == 0:\n"
        "            imp('time').sleep(1); os._exit(0)\n"
        "        kids.append(pid)\n"
        "finally:\n"
        "    for pid in kids:\n"
        "        os.waitpid(pid, 0)\n"
        "out = len(kids)")
    return found


def _leaks(outcomes: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in outcomes.items() if not v.startswith("denied:") and k not in ALLOWED}


def _assert_host_clean(server: RatServer) -> None:
    for path in HOST_FILES:
        assert not Path(path).exists(), f"a pipeline wrote {path}"
    assert not list(server.data_dir.glob("pwned*")), "a pipeline wrote into the data dir"
    assert httpx.get(f"{server.url}/health/ready", timeout=10).status_code == 200


def test_python_probe_run_and_preview_reach_nothing(hostile_server: RatServer) -> None:
    server = hostile_server
    with server.client() as client:
        other = _victim(server, client)
        probes = _attacks(server, other)
        name = unique("hostile")
        _create(client, "bronze", name, probe_pipeline(probes))

        preview = client.post(f"/pipelines/default/bronze/{name}/preview", json={})
        assert preview.status_code == 200, preview.text
        body = preview.json()
        assert not body.get("error"), body
        seen = {r["attack"]: r["outcome"] for r in body["rows"]}
        assert set(seen) == set(probes), seen
        assert not _leaks(seen), _leaks(seen)

        run = _run(client, "bronze", name)
        assert run["status"] == "success", run
        rows = client.post("/query", json={"sql": f"SELECT attack, outcome FROM bronze.{name}",
                                           "limit": 100}).json()
        assert "rows" in rows, rows
        rows = rows["rows"]
        outcomes = {r["attack"]: r["outcome"] for r in rows}
        assert set(outcomes) == set(probes)
        assert not _leaks(outcomes), _leaks(outcomes)
        # the fork bomb met the process limit, not the 400 it asked for
        assert "BlockingIOError" in outcomes["fork bomb"] or "process" in outcomes["fork bomb"]
        assert "MemoryError" in outcomes["3 GB allocation"]
    _assert_host_clean(server)


def test_sql_cannot_read_files_outside_its_tables(hostile_server: RatServer) -> None:
    server = hostile_server
    with server.client() as client:
        for target in (f"{server.data_dir}/secret_key", "/etc/passwd", "/proc/1/environ"):
            name = unique("sqlread")
            _create(client, "bronze", name, f"SELECT * FROM read_text('{target}')", kind="sql")
            run = _run(client, "bronze", name)
            assert run["status"] == "failed", run
            assert "Permission" in str(run["error"]) or "not allowed" in str(run["error"]), run
            preview = client.post(f"/pipelines/default/bronze/{name}/preview", json={}).json()
            assert preview.get("error"), preview
            assert not preview.get("rows"), preview
    _assert_host_clean(server)


def test_cpu_spin_is_stopped_by_the_cpu_limit(hostile_server: RatServer) -> None:
    server = hostile_server
    with server.client() as client:
        name = unique("spin")
        _create(client, "bronze", name, "x = 0\nwhile True:\n    x += 1\n")
        run = _run(client, "bronze", name, timeout=90)
        assert run["status"] == "failed", run
        assert "CPU time limit" in str(run["error"]), run["error"]
        # the server and the other workers are unaffected
        ok = unique("after")
        _create(client, "bronze", ok, "SELECT 1 AS id", kind="sql")
        assert _run(client, "bronze", ok)["status"] == "success"
    _assert_host_clean(server)


def test_memory_hog_fails_with_the_memory_limit(hostile_server: RatServer) -> None:
    with hostile_server.client() as client:
        name = unique("hog")
        _create(client, "bronze", name, "blocks = [bytearray(1 << 30) for _ in range(8)]\n"
                                        "result = None\n")
        run = _run(client, "bronze", name)
        assert run["status"] == "failed", run
        assert "MemoryError" in str(run["error"]), run
        assert "memory limit" in str(run["error"]), run


@pytest.mark.parametrize("target", ["/etc", "/etc/passwd"])
def test_planted_symlinks_are_not_followed_by_storage(hostile_server: RatServer,
                                                       target: str) -> None:
    server = hostile_server
    if getattr(server, "backend", "") != "local":
        pytest.skip("symbolic links exist on local storage only")
    with server.client() as client:
        name = unique("links")
        _create(client, "bronze", name, "SELECT 1 AS id", kind="sql")
        folder = server.data_dir / "storage" / "default" / "pipelines" / "bronze" / name
        (folder / "planted").symlink_to(target)
        base = f"/files/default/pipelines/bronze/{name}/planted"
        for url in (base, f"{base}/passwd"):
            resp = client.get(url)
            assert resp.status_code in (400, 404), (url, resp.status_code, resp.text[:200])
            assert "root:" not in resp.text
        listing = client.get("/files", params={"prefix": f"default/pipelines/bronze/{name}/"})
        assert "passwd" not in listing.text
        assert "planted" not in listing.text
        write = client.put(f"{base}/rat_written", json={"content": "x"})
        assert write.status_code in (400, 404), write.text
        assert not Path(target, "rat_written").exists()
