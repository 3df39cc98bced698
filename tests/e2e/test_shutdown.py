"""Graceful shutdown: SIGTERM lets running runs finish within the grace period, then requeues."""

from __future__ import annotations

import asyncio
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import RatServer, clone_database, unique, wait_run

SLOW_SQL = "SELECT count(*) AS n FROM range(400000000) t(x) WHERE x % 7 = 3"
ENDLESS_SQL = "SELECT count(*) AS n FROM range(100000000000) t(x) WHERE x % 7 = 3"


def _runs(dsn: str, *ids: str) -> dict[str, dict[str, Any]]:
    async def fetch() -> dict[str, dict[str, Any]]:
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch("SELECT id::text, status, attempt, lease_token FROM runs "
                                    "WHERE id = ANY($1::uuid[])", list(ids))
        finally:
            await conn.close()
        return {r["id"]: dict(r) for r in rows}

    return asyncio.run(fetch())


def _create_and_run(client: httpx.Client, name: str, sql: str) -> str:
    client.post("/pipelines", json={"namespace": "default", "layer": "silver", "name": name,
                                    "source": sql}).raise_for_status()
    resp = client.post("/runs", json={"namespace": "default", "layer": "silver", "pipeline": name})
    resp.raise_for_status()
    return str(resp.json()["run_id"])


def _wait_executing(client: httpx.Client, run_id: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] == "running" and run["phase"] in ("execute", "write"):
            return
        time.sleep(0.05)
    raise TimeoutError(f"run {run_id} never started executing")


def _server(dsn: str, data_dir: Path, **env: str) -> RatServer:
    server = RatServer(dsn, data_dir, env)
    server.start()
    return server


def test_sigterm_waits_for_a_running_run_to_finish(pg_base: str, template_db: str) -> None:
    dsn = asyncio.run(clone_database(pg_base, template_db))
    server = _server(dsn, Path(tempfile.mkdtemp(prefix="rat-drain-", dir="/tmp")),
                     RAT_SHUTDOWN_GRACE_SECONDS="120")
    with server.client() as client:
        run_id = _create_and_run(client, unique("slow"), SLOW_SQL)
        _wait_executing(client, run_id)
    assert server.stop(signal.SIGTERM) == 0
    run = _runs(dsn, run_id)[run_id]
    assert run["status"] == "success", run


def test_grace_expiry_requeues_runs_and_stops_claiming(pg_base: str, template_db: str) -> None:
    dsn = asyncio.run(clone_database(pg_base, template_db))
    data_dir = Path(tempfile.mkdtemp(prefix="rat-requeue-", dir="/tmp"))
    env = {"RAT_SHUTDOWN_GRACE_SECONDS": "2", "RAT_WORKERS": "1"}
    endless, quick = unique("endless"), unique("quick")
    server = _server(dsn, data_dir, **env)
    with server.client() as client:
        first = _create_and_run(client, endless, ENDLESS_SQL)
        _wait_executing(client, first)
        second = _create_and_run(client, quick, "SELECT 1 AS one")  # waits: one worker only
    started = time.monotonic()
    assert server.stop(signal.SIGTERM) == 0
    assert time.monotonic() - started < 30
    runs = _runs(dsn, first, second)
    assert runs[first]["status"] == "pending", runs  # attempt voided, back in the queue
    assert runs[first]["attempt"] == 0
    assert runs[first]["lease_token"] is None
    assert runs[second]["status"] == "pending", runs  # never claimed while draining

    # The next start runs both; the endless pipeline was fixed in the meantime.
    entry = data_dir / "storage" / "default" / "pipelines" / "silver" / endless / "pipeline.sql"
    entry.write_text("SELECT 2 AS n")
    again = _server(dsn, data_dir, **env)
    try:
        with again.client() as client:
            done = wait_run(client, first)
            assert done["status"] == "success", done
            assert done["attempt"] == 1
            assert wait_run(client, second)["status"] == "success"
            logs = client.get(f"/runs/{first}/logs").json()["logs"]
            assert any("back in the queue" in rec["message"] for rec in logs), logs
    finally:
        again.stop()
