"""Leader election on a Postgres advisory lock held by a dedicated connection.

Only the leader runs periodic duties (scheduler, triggers, reaper, lease monitor). Losing the
connection loses the lock, so duties stop at once; acquisition is retried every tick (at most 5 s).

Watchdog: a frozen leader (SIGSTOP, a hung loop) can do nothing, so the lock is released from the
Postgres side. The lock session runs with `idle_session_timeout` = tick + lease and the leader
loop touches it every tick; a leader that stops ticking has its session ended by Postgres, and a
standby takes over within 2 x tick + lease. When the old leader wakes up, its next statement
fails and it stops its duties.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

from rat.db.retry import Outage, close_quietly, is_transient

log = logging.getLogger(__name__)
LEADER_LOCK_KEY = 0x7261745F6C6472  # "rat_ldr"
RETRY_SECONDS = 5.0
CONNECT_SECONDS = 10.0


class Duty:
    def __init__(self, name: str, interval: Callable[[], float],
                 run: Callable[[], Awaitable[object]]) -> None:
        self.name = name
        self.interval = interval
        self.run = run
        self.last_run: float = 0.0
        self.last_error: str | None = None
        self.outage = Outage(f"leader duty {name}", log)


class Leader:
    def __init__(self, dsn: str, *, enabled: bool = True, tick: float = 5.0,
                 lease: float = 30.0) -> None:
        self.dsn = dsn
        self.enabled = enabled
        self.tick = tick
        # Postgres ends the lock session after this long without a statement from the leader.
        self.watchdog_seconds = tick + lease
        self.retry_seconds = min(RETRY_SECONDS, tick)
        self._outage = Outage("leader election", log)
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
            was_leader = False
            try:
                if await self._acquire():
                    was_leader = True
                    await self._lead()
            except Exception as exc:
                self.last_error = str(exc) or type(exc).__name__
                if was_leader:
                    log.warning("leadership lost: %s", self.last_error)
                elif is_transient(exc):
                    self._outage.failed(exc)
                else:
                    log.exception("leader election failed")
            finally:
                self.is_leader = False
                await self._drop_connection()
            await asyncio.sleep(self.retry_seconds)

    async def _acquire(self) -> bool:
        timeout_ms = str(int(self.watchdog_seconds * 1000))
        self._conn = await asyncio.wait_for(asyncpg.connect(
            self.dsn, server_settings={"application_name": "rat-leader",
                                       "idle_session_timeout": timeout_ms}), CONNECT_SECONDS)
        got = bool(await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", LEADER_LOCK_KEY))
        self._outage.recovered()
        self.is_leader = got
        if got:
            log.info("this process is the leader")
            self.last_error = None
        return got

    async def _touch(self) -> None:
        """Prove the lock session alive and reset its idle timer (raises once it is gone)."""
        assert self._conn is not None  # noqa: S101
        await asyncio.wait_for(self._conn.fetchval("SELECT 1"), self.watchdog_seconds / 2)

    async def _lead(self) -> None:
        while True:
            await self._touch()
            for duty in self.duties:
                if time.monotonic() - duty.last_run >= duty.interval():
                    await self._touch()  # never act as leader on a lock that is gone
                    await self._run_duty(duty)
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._next_due())

    def _next_due(self) -> float:
        now = time.monotonic()
        waits = [max(d.interval() - (now - d.last_run), 0.05) for d in self.duties]
        return min([*waits, self.tick])

    async def _run_duty(self, duty: Duty) -> None:
        """One duty, bounded: past the watchdog time Postgres has ended the lock session anyway."""
        duty.last_run = time.monotonic()
        try:
            await asyncio.wait_for(duty.run(), self.watchdog_seconds)
        except TimeoutError:
            duty.last_error = f"stopped after {self.watchdog_seconds:.0f} s"
            log.warning("leader duty %s %s", duty.name, duty.last_error)
            return
        except Exception as exc:
            duty.last_error = str(exc) or type(exc).__name__
            if is_transient(exc):
                duty.outage.failed(exc)
            else:
                log.exception("leader duty %s failed", duty.name)
            return
        duty.last_error = None
        duty.outage.recovered()

    async def _drop_connection(self) -> None:
        if self._conn is not None:
            await close_quietly(self._conn)
            self._conn = None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._drop_connection()
        self.is_leader = False
