"""A frozen leader loses its lock from the Postgres side; a standby takes over within the bound."""

from __future__ import annotations

import os
import signal
import tempfile
import time
from pathlib import Path

import httpx

from tests.conftest import RatServer
from tests.faults.conftest import FaultPostgres, replica

TICK, LEASE = 1.0, 4.0
ENV = {"RAT_SCHEDULER_TICK_SECONDS": "1", "RAT_LEASE_SECONDS": "4", "RAT_HEARTBEAT_SECONDS": "1"}
BOUND = 2 * TICK + LEASE


def _is_leader(server: RatServer) -> bool:
    checks = httpx.get(f"{server.url}/health/ready", timeout=5).json()["checks"]
    return bool(checks["leader"]["status"] == "ok")


def _wait(server: RatServer, leader: bool, timeout: float) -> float:
    """Seconds until `server`'s leadership equals `leader` (TimeoutError after `timeout`)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if _is_leader(server) == leader:
            return time.monotonic() - started
        time.sleep(0.1)
    raise TimeoutError(f"{server.url}: leader={leader} not reached in {timeout} s")


def test_a_stopped_leader_loses_the_lock_and_notices_on_resume(fault_pg: FaultPostgres) -> None:
    dsn, data = fault_pg.database(), Path(tempfile.mkdtemp(prefix="rat-ldr-", dir="/tmp"))
    first, second = replica(dsn, data, "first", **ENV), replica(dsn, data, "second", **ENV)
    first.start()
    try:
        _wait(first, True, 30)
        second.start()
        assert not _is_leader(second)
        assert first.proc is not None
        os.kill(first.proc.pid, signal.SIGSTOP)
        try:
            took = _wait(second, True, BOUND + 10)
        finally:
            os.kill(first.proc.pid, signal.SIGCONT)
        assert took <= BOUND + 1.5, f"failover took {took:.1f} s (bound {BOUND:.0f} s)"
        _wait(first, False, 10)
        assert _is_leader(second)
        assert "leadership lost" in first.log_path.read_text()
    finally:
        second.stop()
        first.stop()
