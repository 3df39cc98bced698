"""Hostile console statements get 4xx and change nothing; deadlines stop the work; capacity is bounded.

The app runs in-process (real HTTP handling, real query worker, real catalog and storage) so the
test can ask the query worker, through an introspection job that is not an API, what its
DuckDB reports about the lockdown before and after the hostile list.
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from rat.app import create_app
from rat.config import load_settings
from rat.engine.duck import extension_path
from rat.engine.query import lockdown_problems
from tests.conftest import S3Server, clone_database, unique, wait_run

TIMEOUT_SECONDS = 2


class UrlTrap:
    """A loopback listener that counts connections: any hit means a URL was reached."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.sock.settimeout(0.2)
        self.hits = 0
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/data.csv"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except TimeoutError:
                continue
            self.hits += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@dataclass
class Console:
    client: TestClient[Any]
    backend: str
    data_dir: Path
    warehouse: str
    table: str

    def services(self) -> Any:
        return self.client.app.state["services"]

    def call(self, fn: Any, *args: Any) -> Any:
        portal = self.client.blocking_portal
        assert portal is not None
        return portal.call(fn, *args)

    def lockdown(self) -> list[dict[str, Any]]:
        """Each query worker's report, by pid; both workers are warmed up first (the idle
        queue is first-in first-out, so two statements in a row reach both)."""
        for _ in range(2):
            assert query(self, "SELECT 1").status_code == 200
        reports: list[dict[str, Any]] = self.call(self.services().query.lockdown_reports)
        return sorted(reports, key=lambda r: int(r["pid"]))


@pytest.fixture(scope="module", params=["local", "s3"])
def console(request: pytest.FixtureRequest, pg_base: str, template_db: str,
            s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    data_dir = tmp_path_factory.mktemp(f"console-{request.param}")
    env = {"RAT_DATABASE_URL": asyncio.run(clone_database(pg_base, template_db)),
           "RAT_DATA_DIR": str(data_dir), "RAT_WORKERS": "1", "RAT_QUERY_WORKERS": "2",
           "RAT_QUERY_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS), "RAT_RATE_LIMIT_RPS": "0",
           "RAT_SCHEDULER_TICK_SECONDS": "1"}
    if request.param == "s3":
        env.update(s3_server.env(s3_server.make_bucket()))
    app = create_app(load_settings(environ=env))
    with TestClient(app, base_url="http://rat.test", timeout=60) as client:
        name = unique("t")
        resp = client.post("/api/v1/pipelines", json={
            "namespace": "default", "layer": "silver", "name": name,
            "source": "SELECT * FROM (VALUES (1, 'a'), (2, 'b')) AS t(v, s)"})
        assert resp.status_code == 201, resp.text
        resp = client.post("/api/v1/runs", json={"namespace": "default", "layer": "silver",
                                                 "pipeline": name})
        run = wait_run(_Api(client), resp.json()["run_id"])
        assert run["status"] == "success", run
        warehouse = client.app.state["runtime"].warehouse
        yield Console(client, request.param, data_dir, warehouse, name)


class _Api:
    """`wait_run` speaks to an httpx-like client rooted at /api/v1."""

    def __init__(self, client: TestClient[Any]) -> None:
        self.client = client

    def get(self, path: str) -> Any:
        return self.client.get(f"/api/v1{path}")


def query(console: Console, sql: str, **extra: object) -> Any:
    return console.client.post("/api/v1/query", json={"sql": sql, **extra})


HOSTILE = [
    "COPY (SELECT 1) TO '{wh}/evil.csv'",
    "COPY (SELECT 42) TO '{tmp}/evil.csv'",
    "COPY silver.{t} TO '{tmp}/evil.parquet' (FORMAT parquet)",
    "EXPORT DATABASE '{tmp}/evil_export'",
    "SELECT * FROM read_text('/etc/passwd')",
    "SELECT * FROM read_csv('/etc/passwd')",
    "FROM read_json_auto('/etc/passwd')",
    "SELECT * FROM read_blob('/proc/self/environ')",
    "SELECT * FROM read_csv_auto('/proc/self/environ')",
    "SELECT * FROM '/etc/passwd'",
    "SELECT * FROM glob('/etc/*')",
    "SELECT * FROM sniff_csv('/etc/passwd')",
    "SELECT * FROM parquet_metadata('{wh}/x.parquet')",
    "SELECT * FROM iceberg_scan('{wh}')",
    "SELECT * FROM read_text('{tmp}/../../../etc/passwd')",
    "WITH x AS (SELECT * FROM read_text('/etc/passwd')) SELECT * FROM x",
    "SELECT (SELECT content FROM read_text('/etc/passwd')) AS c",
    "SELECT * FROM read_csv('{url}')",
    "SELECT * FROM '{url}'",
    "SELECT * FROM read_parquet('{url}')",
    "ATTACH '{tmp}/evil.duckdb' AS evil",
    "ATTACH '{url}' AS evil_remote",
    "DETACH \"default\"",
    "USE memory",
    "INSTALL httpfs",
    "INSTALL spatial FROM community",
    "LOAD httpfs",
    "LOAD '{ext}'",
    "SET enable_external_access = true",
    "SET lock_configuration = false",
    "SET memory_limit = '10GB'",
    "SET GLOBAL allowed_directories = ['/']",
    "RESET threads",
    "PRAGMA threads = 8",
    "SET VARIABLE x = 1",
    "CREATE SECRET evil (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "CREATE PERSISTENT SECRET evil2 (TYPE s3, KEY_ID 'a', SECRET 'b')",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM system.main.duckdb_settings",
    "SELECT 1; DROP VIEW silver.{t}",
    "SELECT 1; COPY (SELECT 1) TO '{tmp}/evil_stacked.csv'",
    "SELECT * FROM query('COPY (SELECT 1) TO ''{tmp}/evil_q.csv''')",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{tmp}/evil_explain.csv'",
    "CREATE TABLE evil AS SELECT 1",
    "CREATE MACRO evil() AS 1",
    "INSERT INTO silver.{t} VALUES (3, 'c')",
    "DROP VIEW silver.{t}",
    "CALL dbgen(sf = 0.01)",
    "CHECKPOINT",
    "BEGIN TRANSACTION",
    "PIVOT silver.{t} ON s USING count(*)",
]


def test_hostile_statements_are_refused_without_side_effects(console: Console) -> None:
    before = console.lockdown()
    assert len(before) == 2
    for report in before:
        assert lockdown_problems(report, allowed=report["allowed_directories"], threads=2,
                                 memory_limit="1GB") == []
    home_duckdb = Path.home() / ".duckdb"
    home_before = sorted(home_duckdb.rglob("*")) if home_duckdb.exists() else []
    trap = UrlTrap()
    tmp = console.data_dir / "scratch"
    tmp.mkdir(exist_ok=True)
    try:
        for template in HOSTILE:
            sql = template.format(wh=console.warehouse, tmp=tmp, url=trap.url, t=console.table,
                                  ext=extension_path("httpfs"))
            resp = query(console, sql)
            assert 400 <= resp.status_code < 500, (sql, resp.text)
            assert resp.json()["error"]["code"] == "INVALID_ARGUMENT", (sql, resp.text)
            assert "root:" not in resp.text
            assert "PATH=" not in resp.text
    finally:
        trap.close()
    assert trap.hits == 0
    assert list(tmp.iterdir()) == []
    assert not list(console.data_dir.rglob("evil*"))
    if console.backend == "s3":
        storage = console.client.app.state["runtime"].storage
        assert console.call(storage.list, "_warehouse/evil") == []
    after = console.lockdown()
    assert [r["pid"] for r in after] == [r["pid"] for r in before], "same workers, no respawn"
    assert after == before, "lockdown settings and secrets read back unchanged"
    assert (sorted(home_duckdb.rglob("*")) if home_duckdb.exists() else []) == home_before
    rows = query(console, f"SELECT count(*) AS n FROM silver.{console.table}").json()["rows"]
    assert rows == [{"n": 2}], "the stacked DROP never ran"


def test_lockdown_is_what_the_spec_asks_for(console: Console) -> None:
    settings = console.lockdown()[0]["settings"]
    assert settings["enable_external_access"] == "false"
    assert settings["lock_configuration"] == "true"
    assert settings["autoinstall_known_extensions"] == "false"
    assert settings["autoload_known_extensions"] == "false"
    assert settings["threads"] == "2"
    dirs = console.lockdown()[0]["allowed_directories"]
    assert console.warehouse.rstrip("/") + "/" in dirs
    assert len(dirs) == 2
    assert any("/tmp/query/" in d for d in dirs)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def query_worker_pids() -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if b"rat.engine.workerproc" in cmd and b"query" in cmd and int(stat[1]) == os.getpid():
            pids.append(int(entry.name))
    return pids


def test_timeout_answers_504_and_frees_the_cpu(console: Console) -> None:
    console.lockdown()
    pids = sorted(query_worker_pids())
    assert len(pids) == 2
    start = time.monotonic()
    resp = query(console, "SELECT count(*) FROM range(10000000000000)")
    answered = time.monotonic()
    assert resp.status_code == 504, resp.text
    assert resp.json()["error"] == {"code": "DEADLINE_EXCEEDED", "type": "INTERNAL",
                                    "message": f"query exceeded {TIMEOUT_SECONDS} s and "
                                               "was stopped"}
    assert TIMEOUT_SECONDS - 0.5 <= answered - start <= TIMEOUT_SECONDS + 2.5
    time.sleep(max(0.0, answered + 1.5 - time.monotonic()))
    first = sum(cpu_ticks(pid) for pid in pids)
    time.sleep(0.5)
    assert sum(cpu_ticks(pid) for pid in pids) - first <= 5, "query workers idle within 2 s"
    assert sorted(query_worker_pids()) == pids, "interrupted, not killed"
    assert query(console, "SELECT 42 AS x").json()["rows"] == [{"x": 42}]


def test_range_with_a_double_argument_is_a_binder_error(console: Console) -> None:
    # DuckDB 1.5.5 has no range(DOUBLE): `range(1e13)` is refused by the binder (400) before any
    # work starts; `range(10000000000000)` above is the statement that actually runs.
    resp = query(console, "SELECT count(*) FROM range(1e13)")
    assert resp.status_code == 400
    assert "range(DOUBLE)" in resp.json()["error"]["message"]


def test_full_pool_with_16_waiting_answers_429(console: Console) -> None:
    statuses: list[int] = []
    retry_after: list[str] = []

    def run(sql: str) -> None:
        resp = query(console, sql)
        statuses.append(resp.status_code)
        if resp.status_code == 429:
            retry_after.append(resp.headers.get("retry-after", ""))
            assert resp.json()["error"]["code"] == "RESOURCE_EXHAUSTED"

    # Two statements hold both query workers until their deadline; 19 more arrive meanwhile:
    # 16 wait their turn, the other 3 are turned away at once.
    slow = [threading.Thread(target=run, args=("SELECT count(*) FROM range(10000000000000)",))
            for _ in range(2)]
    for t in slow:
        t.start()
    time.sleep(0.5)
    fast = [threading.Thread(target=run, args=("SELECT 1",)) for _ in range(19)]
    for t in fast:
        t.start()
    for t in [*slow, *fast]:
        t.join()
    assert sorted(statuses) == [200] * 16 + [429] * 3 + [504] * 2, statuses
    assert retry_after == ["1", "1", "1"]


def test_queries_run_concurrently_and_never_hold_up_runs(console: Console) -> None:
    finished: list[float] = []

    def slow() -> None:
        resp = query(console, "SELECT count(*) FROM range(10000000000000)")
        assert resp.status_code == 504
        finished.append(time.time())

    start = time.time()
    threads = [threading.Thread(target=slow) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    name = unique("busy")
    resp = console.client.post("/api/v1/pipelines", json={
        "namespace": "default", "layer": "bronze", "name": name, "source": "SELECT 1 AS x"})
    assert resp.status_code == 201
    resp = console.client.post("/api/v1/runs", json={"namespace": "default", "layer": "bronze",
                                                     "pipeline": name})
    run = wait_run(_Api(console.client), resp.json()["run_id"])
    for t in threads:
        t.join()
    assert run["status"] == "success"
    started = datetime.fromisoformat(str(run["started_at"]).replace("Z", "+00:00")).timestamp()
    assert started < min(finished), "the run started while both query workers were busy"
    assert max(finished) - start < 2 * TIMEOUT_SECONDS, "the two statements ran side by side"


def test_downloads_and_json_queries_run_side_by_side(console: Console) -> None:
    results: dict[str, int] = {}

    def json_query() -> None:
        results["json"] = query(console, "SELECT 1 AS x").status_code

    def download() -> None:
        resp = query(console, "SELECT * FROM range(200000)", format="csv")
        results["csv"] = resp.status_code
        results["lines"] = resp.text.count("\n")

    threads = [threading.Thread(target=fn) for fn in (download, json_query)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"json": 200, "csv": 200, "lines": 200_001}
