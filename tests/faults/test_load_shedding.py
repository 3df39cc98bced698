"""An exhausted connection pool sheds requests as 'busy' (503 + Retry-After) within the deadline."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from rat.db.database import ACQUIRE_TIMEOUT_SECONDS
from tests.faults.conftest import FaultPostgres, replica

CLIENTS = 12
HOLD_SECONDS = 8.0


async def _timed_get(client: httpx.AsyncClient, path: str) -> tuple[float, httpx.Response]:
    started = time.monotonic()
    resp = await client.get(path)
    return time.monotonic() - started, resp


async def _flood(base: str, dsn: str) -> list[tuple[float, httpx.Response]]:
    """Hold the pipelines table locked, so the one pooled connection sits in a slow request."""
    lock = await asyncpg.connect(dsn)
    try:
        tx = lock.transaction()
        await tx.start()
        await lock.execute("LOCK TABLE pipelines IN ACCESS EXCLUSIVE MODE")
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            requests = [asyncio.create_task(_timed_get(client, "/pipelines"))
                        for _ in range(CLIENTS)]
            await asyncio.sleep(HOLD_SECONDS)
            await tx.rollback()
            return await asyncio.gather(*requests)
    finally:
        await lock.close()


def test_pool_exhaustion_answers_busy_within_the_acquire_deadline(
        fault_pg: FaultPostgres) -> None:
    dsn = fault_pg.database()
    server = replica(dsn, Path(tempfile.mkdtemp(prefix="rat-busy-", dir="/tmp")), "server",
                     RAT_DB_POOL_SIZE="1")
    server.start()
    try:
        results = asyncio.run(_flood(f"{server.url}/api/v1", dsn))
    finally:
        server.stop()
    shed = [(took, resp) for took, resp in results if resp.status_code == 503]
    assert shed, [(took, r.status_code) for took, r in results]
    assert {r.status_code for _, r in results} <= {200, 503}
    for took, resp in shed:
        assert took <= ACQUIRE_TIMEOUT_SECONDS + 1.5, took
        assert resp.headers["Retry-After"] == "1"
        error = resp.json()["error"]
        assert error["code"] == "UNAVAILABLE"
        assert "busy" in error["message"], error
        assert "database unavailable" not in error["message"]
