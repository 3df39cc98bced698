"""Riding out a database outage: which errors are transient, backoff, and one log line per outage.

Background loops (lease renewal, claiming, leader duties, log shipping) must survive a Postgres
restart or a network blip: they retry with backoff instead of dying, and say so once when the
outage starts and once when it ends, not on every retry.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from rat.core.errors import Unavailable

T = TypeVar("T")
BACKOFF_FIRST_SECONDS = 0.25
BACKOFF_MAX_SECONDS = 5.0


def _catalog_errors() -> tuple[type[BaseException], ...]:
    # The SQL catalog reaches the same Postgres through SQLAlchemy + psycopg.
    try:
        import psycopg
        from sqlalchemy.exc import OperationalError
    except ImportError:  # pragma: no cover - both ship with the sql catalog
        return ()
    return (OperationalError, psycopg.OperationalError)


TRANSIENT: tuple[type[BaseException], ...] = (
    OSError, TimeoutError, Unavailable, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
    asyncpg.OperatorInterventionError, asyncpg.TooManyConnectionsError, *_catalog_errors())


def is_transient(exc: BaseException) -> bool:
    """True for errors that a retry after the database is back would not repeat."""
    return isinstance(exc, TRANSIENT)


class Backoff:
    """Exponential delays from 0.25 s up to a cap; `reset()` after a success."""

    def __init__(self, cap: float = BACKOFF_MAX_SECONDS) -> None:
        self.cap = cap
        self._next = BACKOFF_FIRST_SECONDS

    def delay(self) -> float:
        current, self._next = self._next, min(self._next * 2, self.cap)
        return current

    def reset(self) -> None:
        self._next = BACKOFF_FIRST_SECONDS


class Outage:
    """Logs the first failure of an outage and the recovery, never each retry in between."""

    def __init__(self, what: str, logger: logging.Logger) -> None:
        self.what = what
        self.log = logger
        self.since: float | None = None

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException) -> None:
        if self.since is None:
            self.since = time.monotonic()
            self.log.warning("%s: database unavailable (%s: %s); retrying", self.what,
                             type(exc).__name__, exc)

    def recovered(self) -> None:
        if self.since is not None:
            self.log.info("%s: database reachable again after %.1f s", self.what,
                          time.monotonic() - self.since)
            self.since = None


async def retrying(fn: Callable[[], Awaitable[T]], outage: Outage, *,
                   give_up: Callable[[], bool] = lambda: False) -> T:
    """Await `fn()` until it succeeds; transient errors are retried with backoff.

    Other errors propagate at once; so does the last transient error once `give_up()` is true.
    """
    backoff = Backoff()
    while True:
        try:
            result = await fn()
        except Exception as exc:
            if not is_transient(exc) or give_up():
                raise
            outage.failed(exc)
            await asyncio.sleep(backoff.delay())
            continue
        outage.recovered()
        return result


async def close_quietly(conn: asyncpg.Connection, within: float = 2.0) -> None:
    """Close a dedicated connection (LISTEN, leader lock) without raising.

    asyncpg's close() can end in CancelledError when the server drops the socket meanwhile; that
    must not pass for the shutdown itself being cancelled (SIGTERM would then exit 1).
    """
    task = asyncio.current_task()
    try:
        await asyncio.wait_for(conn.close(), within)
    except asyncio.CancelledError:
        conn.terminate()
        if task is not None and task.cancelling():
            raise
    except Exception:
        conn.terminate()
