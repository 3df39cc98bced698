"""Postgres outages shorter than a lease: runs survive them, replicas do not reap each other."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import httpx

from tests.conftest import RatServer, unique, wait_run
from tests.e2e.wap_client import PipelineClient, wait_phase, worker_pid
from tests.faults.conftest import FaultPostgres, replica

LEASE = {"RAT_LEASE_SECONDS": "20", "RAT_HEARTBEAT_SECONDS": "2"}
OUTAGE_SECONDS = 8.0  # well under the 20 s lease
# Sleeps past outage + lease, so a lease that stopped being renewed would expire mid-run.
SLEEPY = """import time
time.sleep(40)
result = duckdb_conn.sql("SELECT 1 AS id").arrow()
"""


def _data_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="rat-fault-", dir="/tmp"))


def _wait_leader(server: RatServer, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        checks = httpx.get(f"{server.url}/health/ready", timeout=5).json()["checks"]
        if checks["leader"]["status"] == "ok":
            return
        time.sleep(0.2)
    raise TimeoutError(f"{server.url} never became the leader")


def _outage(pg: FaultPostgres, seconds: float) -> None:
    pg.stop()
    time.sleep(seconds)
    pg.start()


def _messages(api: httpx.Client, run_id: str) -> list[str]:
    return [r["message"] for r in api.get(f"/runs/{run_id}/logs").json()["logs"]]


def test_outage_shorter_than_the_lease_spares_a_run_on_the_other_replica(
        fault_pg: FaultPostgres) -> None:
    dsn, data = fault_pg.database(), _data_dir()
    # The runner never leads, so the run executes on the replica that is not the leader.
    runner = replica(dsn, data, "runner", RAT_SCHEDULER_ENABLED="false", **LEASE)
    leader = replica(dsn, data, "leader", **LEASE)
    runner.start()
    try:
        with runner.client() as api:
            p = PipelineClient(api, "silver", unique("blip")).create(SLEEPY, "python")
            run_id = p.start()
            wait_phase(api, run_id, ("execute",))
            leader.start()
            _wait_leader(leader)
            _outage(fault_pg, OUTAGE_SECONDS)
            run = wait_run(api, run_id, timeout=120)
            messages = _messages(api, run_id)
        assert run["status"] == "success", (run, messages)
        assert run["attempt"] == 1, run
        assert not any("worker lost" in m for m in messages), messages
        for server in (runner, leader):
            assert "crashed in the dispatcher" not in server.log_path.read_text()
    finally:
        leader.stop()
        runner.stop()


def test_a_run_after_postgres_restarted_succeeds(fault_pg: FaultPostgres) -> None:
    server = replica(fault_pg.database(), _data_dir(), "server")
    server.start()
    try:
        with server.client() as api:
            p = PipelineClient(api, "silver", unique("restart")).create("SELECT 1 AS id")
            assert p.run()["status"] == "success"
            _outage(fault_pg, 1.0)
            run = p.run()
            assert run["status"] == "success", (run, _messages(api, str(run["id"])))
            assert run["attempt"] == 1, run
        log = server.log_path.read_text()
        assert "server closed the connection" not in log, log[-3000:]
    finally:
        server.stop()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_an_outage_longer_than_the_lease_stops_the_run_before_its_lease_ends(
        fault_pg: FaultPostgres) -> None:
    dsn, data = fault_pg.database(), _data_dir()
    lease = 10.0
    env = {"RAT_LEASE_SECONDS": "10", "RAT_HEARTBEAT_SECONDS": "2"}
    runner = replica(dsn, data, "runner", RAT_SCHEDULER_ENABLED="false", **env)
    leader = replica(dsn, data, "leader", **env)
    runner.start()
    try:
        with runner.client() as api:
            p = PipelineClient(api, "silver", unique("fence")).create(
                SLEEPY.replace("40", "25"), "python")
            run_id = p.start()
            wait_phase(api, run_id, ("execute",))
            pid = worker_pid(api, run_id)
            leader.start()
            _wait_leader(leader)
            fault_pg.stop()
            down = time.monotonic()
            # Nobody can reap while Postgres is down: only the run's own server can stop it,
            # and it must do so before the lease (renewed at the latest just now) runs out.
            while _alive(pid) and time.monotonic() - down < lease + 5:
                time.sleep(0.1)
            stopped_after = time.monotonic() - down
            time.sleep(max(0.0, lease + 3 - stopped_after))
            fault_pg.start()
            run = wait_run(api, run_id, timeout=120)
            messages = _messages(api, run_id)
        assert stopped_after < lease, f"worker still alive {stopped_after:.1f} s into the outage"
        # The fence is logged by the run's server; its run-log copy is shipped after the outage
        # and may lose to the leader settling the run first (then the server log has it).
        assert any("lease not renewed" in m for m in messages) or \
            "lease not renewed" in runner.log_path.read_text(), messages
        # Requeued (the attempt was void) and run again, unless the leader settled it first.
        assert run["status"] == "success" or run["error"].startswith("worker lost"), run
        assert "crashed in the dispatcher" not in runner.log_path.read_text()
    finally:
        leader.stop()
        runner.stop()
