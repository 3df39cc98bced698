"""Run control over HTTP: cancel, a killed worker, retries, kill -9 of the server, live logs."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from rat.app import sqlalchemy_url
from rat.core.specs import StorageSpec
from rat.engine.catalog import CatalogSpec, IcebergTables
from tests.conftest import RatServer, start_server, unique, wait_run
from tests.e2e.wap_client import PipelineClient, wait_phase, worker_pid

# About a minute of CPU on two threads: long enough to act on a run while it executes.
# full_refresh streams its query into the table, so the query runs in the write phase.
QUERYING = ("execute", "write")
SLOW = "SELECT count(*) AS n FROM range(300000) a, range(300000) b WHERE a.range * b.range = 7"


def _gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_cancel_kills_the_worker_and_keeps_the_table(api: httpx.Client) -> None:
    p = PipelineClient(api, "silver", unique("cancel")).create("SELECT 1 AS id")
    assert p.run()["status"] == "success"
    p.write("pipeline.sql", SLOW)
    run_id = p.start()
    wait_phase(api, run_id, QUERYING)
    pid = worker_pid(api, run_id)
    started = time.monotonic()
    resp = api.post(f"/runs/{run_id}/cancel")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"run_id": run_id, "status": "cancelled"}
    assert api.get(f"/runs/{run_id}").json()["status"] == "cancelled"
    assert _gone(pid), "the worker kept running after cancel"
    assert time.monotonic() - started < 10
    assert api.post(f"/runs/{run_id}/cancel").status_code == 409
    assert p.rows() == [{"id": 1}]
    messages = [r["message"] for r in api.get(f"/runs/{run_id}/logs").json()["logs"]]
    assert "run cancelled by user" in messages
    p.write("pipeline.sql", "SELECT 2 AS id")
    assert p.run()["status"] == "success"  # the pool replaced the killed worker
    assert p.rows() == [{"id": 2}]


def test_killed_worker_fails_the_run_then_a_retry_succeeds(api: httpx.Client) -> None:
    p = PipelineClient(api, "silver", unique("sigkill")).create("SELECT 1 AS id")
    assert p.run()["status"] == "success"
    p.write("pipeline.sql", SLOW)
    run_id = p.start()
    wait_phase(api, run_id, QUERYING)
    os.kill(worker_pid(api, run_id), signal.SIGKILL)
    run = wait_run(api, run_id, timeout=15)
    assert run["status"] == "failed"
    assert run["error"] == "worker process died: signal SIGKILL"
    assert p.rows() == [{"id": 1}]

    # Retries come from the executed files' annotations; each attempt resolves refs afresh.
    ctrl = PipelineClient(api, "bronze", unique("ctrl")).create("SELECT 300000 AS n")
    assert ctrl.run()["status"] == "success"
    p.write("pipeline.sql", "-- @max_retries: 1\n-- @retry_delay_seconds: 3\n"
            f"SELECT count(*) AS n FROM {{{{ ref('bronze.{ctrl.name}') }}}} c, range(c.n) a, "
            "range(c.n) b WHERE a.range * b.range = 7")
    run_id = p.start()
    wait_phase(api, run_id, QUERYING)
    os.kill(worker_pid(api, run_id), signal.SIGKILL)
    wait_phase(api, run_id, ("retry_wait",), timeout=15)
    ctrl.write("pipeline.sql", "SELECT 10 AS n")
    assert ctrl.run()["status"] == "success"
    run = wait_run(api, run_id, timeout=60)
    assert (run["status"], run["attempt"], run["max_attempts"]) == ("success", 2, 2), run
    assert p.rows() == [{"n": 2}]  # 1*7 and 7*1
    messages = [r["message"] for r in api.get(f"/runs/{run_id}/logs").json()["logs"]]
    assert any(m.startswith("retrying in 3 s (attempt 2/2)") for m in messages)


def test_sse_streams_logs_and_ends_with_status(api: httpx.Client, local_server: RatServer) -> None:
    p = PipelineClient(api, "silver", unique("sse")).create("SELECT 1 AS id")
    run_id = p.start()
    events: list[tuple[str, str]] = []
    with httpx.stream("GET", f"{local_server.url}/api/v1/runs/{run_id}/logs",
                      headers={"Accept": "text/event-stream"}, timeout=60) as resp:
        assert resp.headers["content-type"].startswith("text/event-stream")
        event = ""
        for line in resp.iter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                events.append((event, line[len("data: "):]))
    assert events[-1] == ("status", '{"status":"success"}')
    assert any(kind == "log" and "attempt 1/1" in data for kind, data in events)


@pytest.fixture
def crash_server(pg_base: str, template_db: str) -> Iterator[RatServer]:
    server = start_server(pg_base, template_db, "local", None)
    try:
        yield server
    finally:
        server.stop()


def _catalog(server: RatServer) -> IcebergTables:
    storage = StorageSpec(kind="local", root=str(server.data_dir / "storage"))
    return IcebergTables(CatalogSpec(type="sql", uri=sqlalchemy_url(server.dsn), name="rat",
                                     warehouse=storage.uri("_warehouse"), storage=storage))


def test_server_kill9_mid_write_then_restart(crash_server: RatServer) -> None:
    name = unique("crash")
    with crash_server.client() as api:
        p = PipelineClient(api, "silver", name).create(
            "-- @merge_strategy: append_only\nSELECT range AS id FROM range(1000)")
        assert p.run()["status"] == "success"
        # The slow test holds the run in the quality phase with its rows staged on a branch.
        p.write("tests/quality/slow.sql", f"SELECT * FROM {{{{ this }}}}, ({SLOW}) s WHERE s.n < 0")
        run_id = p.start()
        wait_phase(api, run_id, ("quality",), timeout=90)
    tables = _catalog(crash_server)
    ident = f"default.silver.{name}"
    branch = "rat_run_" + run_id.replace("-", "")
    before = tables.state(ident)
    assert branch in tables.load(ident).metadata.refs
    crash_server.stop(signal.SIGKILL)
    crash_server.start()
    restarted = time.monotonic()
    with crash_server.client() as api:
        run = wait_run(api, run_id, timeout=45)
        assert time.monotonic() - restarted <= 45
        assert run["status"] == "failed"
        assert run["error"] == "worker lost: the run's worker or server died"
        after = tables.state(ident)
        assert after.snapshot_id == before.snapshot_id
        assert branch not in tables.load(ident).metadata.refs
        p = PipelineClient(api, "silver", name)
        assert len(p.rows()) == 1000
        p.write("tests/quality/slow.sql", "SELECT * FROM {{ this }} WHERE id < 0")
        rerun = p.run()
        assert rerun["status"] == "success", rerun
        count = api.post("/query", json={"sql": f"SELECT count(*) AS n, count(DISTINCT id) AS d "
                                                f"FROM silver.{name}"}).json()["rows"]
        assert count == [{"n": 2000, "d": 1000}]


def test_concurrent_runs_of_one_pipeline_are_serialized(api: httpx.Client) -> None:
    p = PipelineClient(api, "silver", unique("serial")).create(
        "-- @merge_strategy: append_only\nSELECT 1 AS id")
    ids = [p.start() for _ in range(3)]
    runs = [wait_run(api, rid, timeout=90) for rid in ids]
    assert [r["status"] for r in runs] == ["success"] * 3
    spans = sorted((datetime.fromisoformat(str(r["started_at"])),
                    datetime.fromisoformat(str(r["finished_at"]))) for r in runs)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(2)), spans
    assert p.rows() == [{"id": 1}] * 3



def test_runs_of_different_pipelines_run_in_parallel(api: httpx.Client) -> None:
    work = "SELECT count(*) AS n FROM range(30000) a, range(30000) b WHERE a.range * b.range = 7"
    first = PipelineClient(api, "silver", unique("par")).create(work)
    second = PipelineClient(api, "silver", unique("par")).create(work)
    ids = [first.start(), second.start()]
    runs = [wait_run(api, rid, timeout=120) for rid in ids]
    assert [r["status"] for r in runs] == ["success", "success"]
    (_a_start, a_end), (b_start, _b_end) = sorted(
        (datetime.fromisoformat(str(r["started_at"])), datetime.fromisoformat(str(r["finished_at"])))
        for r in runs)
    assert b_start < a_end, "the second pipeline waited for the first"
