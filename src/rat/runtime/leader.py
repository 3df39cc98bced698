"""Leader election on a Postgres advisory lock held by a dedicated connection.

Only the leader runs periodic duties (scheduler, triggers, reaper, lease monitor). Losing the
connection loses the lock, so duties stop at once; acquisition is retried every 5 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

log = logging.getLogger(__name__)
LEADER_LOCK_KEY = 0x7261745F6C6472  # "rat_ldr"
RETRY_SECONDS = 5.0


class Duty:
    def __init__(self, name: str, interval: Callable[[], float],
                 run: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.interval = interval
        self.run = run
        self.last_run: float = 0.0
        self.last_error: str | None = None


class Leader:
    def __init__(self, dsn: str, *, enabled: bool = True) -> None:
        self.dsn = dsn
        self.enabled = enabled
        self.duties: list[Duty] = []
        self.is_leader = False
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: asyncpg.Connection | None = None
        self._wake = asyncio.Event()

    def add(self, name: str, interval: Callable[[], float],
            run: Callable[[], Awaitable[object]]) -> Duty:
        duty = Duty(name, interval, run)
        self.duties.append(duty)
        return duty

    def poke(self) -> None:
        """Run due duties now (e.g. after a landing upload) instead of at the next tick."""
        self._wake.set()

    async def start(self) -> None:
        if self.enabled:
            self._task = asyncio.create_task(self._loop(), name="rat-leader")

    async def _loop(self) -> None:
        while True:
            try:
                if await self._acquire():
                    await self._lead()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.last_error = str(exc)
                log.warning("leadership lost or unavailable: %s", exc)
            finally:
                self.is_leader = False
                await self._drop_connection()
            await asyncio.sleep(RETRY_SECONDS)

    async def _acquire(self) -> bool:
        self._conn = await asyncpg.connect(self.dsn)
        got = bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK_KEY))
        self.is_leader = got
        if got:
            log.info("this process is the leader")
            self.last_error = None
        return got

    async def _lead(self) -> None:
        assert self._conn is not None  # noqa: S101
        while True:
            await self._conn.fetchval("SELECT 1")  # raises when the connection (lock) is gone
            for duty in self.duties:
                if time.monotonic() - duty.last_run >= duty.interval():
                    await self._run_duty(duty)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._next_due())

    def _next_due(self) -> float:
        now = time.monotonic()
        waits = [max(d.interval() - (now - d.last_run), 0.05) for d in self.duties]
        return min(waits, default=RETRY_SECONDS)

    async def _run_duty(self, duty: Duty) -> None:
        duty.last_run = time.monotonic()
        try:
            await duty.run()
            duty.last_error = None
        except Exception as exc:
            duty.last_error = str(exc)
            log.exception("leader duty %s failed", duty.name)

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop_connection()
        self.is_leader = False
