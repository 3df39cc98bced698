"""The asyncpg pool behind a small typed facade: every statement is a named Query."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar, overload

import asyncpg
import msgspec

from rat.core.errors import Busy, Unavailable
from rat.db.gate import FairGate
from rat.db.queries import Query

T = TypeVar("T")
# What `connection()`/`transaction()` yield: a pooled connection proxy, usable as a Connection.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
ACQUIRE_TIMEOUT_SECONDS = 5.0
BUSY_MESSAGE = "server busy: no database connection free within 5 s; retry shortly"
_json_encoder = msgspec.json.Encoder()


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typename in ("jsonb", "json"):
        await conn.set_type_codec(typename, schema="pg_catalog", format="text",
                                  encoder=lambda v: _json_encoder.encode(v).decode(),
                                  decoder=msgspec.json.decode)


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset query (one extra round trip per release).

    Pooled connections never carry session state: LISTEN, session advisory locks and SET run on
    dedicated connections (leader, dispatcher, migrations). asyncpg still rolls back a
    transaction left open. Skipping the reset took a pooled SELECT from ~2.7k to ~4.2k/s (BM6).
    """


class _OnePerOutage(logging.Filter):
    """One line, no traceback, every 5 minutes at most for asyncpg's floor reconnect failures.

    asyncpg logs a traceback each time it fails to reconnect its floor connection (backoff up to
    a minute); during an outage that is noise next to RAT's own one line per loop.
    """

    def __init__(self, every: float = 300.0) -> None:
        super().__init__()
        self.every = every
        self._last = -every

    def filter(self, record: logging.LogRecord) -> bool:
        if "restore the pool connection floor" not in record.getMessage():
            return True
        now = time.monotonic()
        if now - self._last < self.every:
            return False
        self._last = now
        if record.exc_info and record.exc_info[1] is not None:
            record.msg = f"{record.msg} ({type(record.exc_info[1]).__name__}: {record.exc_info[1]})"
        record.exc_info, record.exc_text = None, None
        return True


_pool_log = logging.getLogger("asyncpg.pool")
if not any(isinstance(f, _OnePerOutage) for f in _pool_log.filters):
    _pool_log.addFilter(_OnePerOutage())


async def create_pool(dsn: str, size: int) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=1, max_size=size, init=_init_connection, reset=_keep_session,
        command_timeout=60, server_settings={"application_name": "rat", "timezone": "UTC"})


def _record(row: asyncpg.Record) -> dict[str, Any]:
    return dict(row.items())


class Database:
    """Connections and transactions with a 5 s acquire deadline.

    An exhausted pool is "busy" (503 with Retry-After: load shedding, the client retries); a
    database that cannot be reached is "unavailable" (503: an outage).
    """

    def __init__(self, pool: asyncpg.Pool, dsn: str) -> None:
        self.pool = pool
        self.dsn = dsn
        self.gate = FairGate(pool.get_max_size())

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        started = time.monotonic()
        try:
            await self.gate.acquire(ACQUIRE_TIMEOUT_SECONDS)
        except TimeoutError:
            raise Busy(BUSY_MESSAGE) from None
        try:
            # One deadline for the gate and the pool together: no request waits longer.
            left = ACQUIRE_TIMEOUT_SECONDS - (time.monotonic() - started)
            if left <= 0:
                raise Busy(BUSY_MESSAGE)
            async with self._acquire(left) as conn:
                yield conn
        finally:
            self.gate.release()

    @asynccontextmanager
    async def _acquire(self, within: float) -> AsyncIterator[Conn]:
        try:
            conn = await self.pool.acquire(timeout=within)
        except TimeoutError:
            if self.pool.get_size() < self.pool.get_max_size():
                # Room in the pool, so the time went into connecting: Postgres is not answering.
                raise Unavailable("database unavailable") from None
            raise Busy(BUSY_MESSAGE) from None
        except asyncpg.TooManyConnectionsError:
            raise Busy(BUSY_MESSAGE) from None
        except (OSError, asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError):
            raise Unavailable("database unavailable") from None
        try:
            yield conn
        finally:
            await self.pool.release(conn)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        async with self.connection() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def _use(self, conn: Conn | None) -> AsyncIterator[Conn]:
        if conn is not None:
            yield conn
            return
        async with self.connection() as fresh:
            yield fresh

    @overload
    async def one(self, q: Query, *args: Any, into: type[T],
                  conn: Conn | None = None) -> T | None: ...
    @overload
    async def one(self, q: Query, *args: Any, into: None = None,
                  conn: Conn | None = None) -> dict[str, Any] | None: ...
    async def one(self, q: Query, *args: Any, into: type[Any] | None = None,
                  conn: Conn | None = None) -> Any:
        async with self._use(conn) as c:
            row = await c.fetchrow(q.sql, *args)
        if row is None:
            return None
        return msgspec.convert(_record(row), into) if into else _record(row)

    @overload
    async def many(self, q: Query, *args: Any, into: type[T],
                   conn: Conn | None = None) -> list[T]: ...
    @overload
    async def many(self, q: Query, *args: Any, into: None = None,
                   conn: Conn | None = None) -> list[dict[str, Any]]: ...
    async def many(self, q: Query, *args: Any, into: type[Any] | None = None,
                   conn: Conn | None = None) -> list[Any]:
        async with self._use(conn) as c:
            rows = await c.fetch(q.sql, *args)
        if into is None:
            return [_record(r) for r in rows]
        return [msgspec.convert(_record(r), into) for r in rows]

    async def val(self, q: Query, *args: Any, conn: Conn | None = None) -> Any:
        async with self._use(conn) as c:
            return await c.fetchval(q.sql, *args)

    async def exec(self, q: Query, *args: Any, conn: Conn | None = None) -> None:
        async with self._use(conn) as c:
            await c.execute(q.sql, *args)

    async def execrows(self, q: Query, *args: Any, conn: Conn | None = None) -> int:
        async with self._use(conn) as c:
            status = await c.execute(q.sql, *args)
        return int(status.rsplit(" ", 1)[-1])

    async def executemany(self, q: Query, rows: Sequence[Sequence[Any]],
                          conn: Conn | None = None) -> None:
        async with self._use(conn) as c:
            await c.executemany(q.sql, rows)

    async def close(self) -> None:
        await self.pool.close()
