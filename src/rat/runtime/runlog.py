"""Run log writer: buffers records and flushes them in batches so logs survive cancels and crashes.

A flush that fails on a database blip keeps its records and tries again on the next tick; the
flusher never dies, and `close()` gives the database a bounded time to come back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import datetime

from rat.core.timefmt import utcnow
from rat.db.database import Conn, Database
from rat.db.queries import load_queries
from rat.db.retry import Outage, is_transient

log = logging.getLogger(__name__)

Q = load_queries("rat.runs")
FLUSH_SECONDS = 0.25
MAX_MESSAGE_BYTES = 8 * 1024
MAX_RECORDS = 10_000
# How long close() keeps retrying a flush through an outage before the tail of the log is lost.
CLOSE_RETRY_SECONDS = 30.0
_LEVELS = {"warning": "warn", "critical": "error", "exception": "error"}


class RunLogWriter:
    def __init__(self, db: Database, run_id: uuid.UUID, next_seq: int) -> None:
        self.db = db
        self.run_id = run_id
        self.seq = next_seq
        self.written = 0
        self._buffer: list[tuple[uuid.UUID, int, datetime, str, str]] = []
        self._task: asyncio.Task[None] | None = None
        self._truncated = False
        self._outage = Outage(f"run log of {run_id}", log)

    @classmethod
    async def open(cls, db: Database, run_id: uuid.UUID) -> RunLogWriter:
        writer = cls(db, run_id, int(await db.val(Q["next_log_seq"], run_id)))
        writer._task = asyncio.create_task(writer._flusher())
        return writer

    def write(self, level: str, message: str) -> None:
        if self._truncated:
            return
        level = _LEVELS.get(level, level)
        if level not in ("debug", "info", "warn", "error"):
            level = "info"
        if self.written >= MAX_RECORDS:
            self._truncated = True
            level, message = "warn", f"log truncated after {MAX_RECORDS} records"
        data = message.encode()
        if len(data) > MAX_MESSAGE_BYTES:
            message = data[:MAX_MESSAGE_BYTES].decode(errors="ignore") + "… (truncated)"
        self._buffer.append((self.run_id, self.seq, utcnow(), level, message))
        self.seq += 1
        self.written += 1

    async def _flusher(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_SECONDS)
            with contextlib.suppress(Exception):  # flush() logged it and kept the records
                await self.flush()

    async def flush(self, conn: Conn | None = None) -> None:
        """Write the buffered records; on failure they stay buffered (in order) and it raises."""
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        try:
            await self.db.executemany(Q["insert_logs"], batch, conn=conn)
        except Exception as exc:
            self._buffer[:0] = batch
            if is_transient(exc):
                self._outage.failed(exc)
            else:
                log.exception("cannot write the log of run %s", self.run_id)
            raise
        self._outage.recovered()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        deadline = asyncio.get_running_loop().time() + CLOSE_RETRY_SECONDS
        while self._buffer:
            try:
                await self.flush()
            except Exception as exc:
                if not is_transient(exc) or asyncio.get_running_loop().time() > deadline:
                    log.warning("run %s: %d log records lost", self.run_id, len(self._buffer))
                    self._buffer.clear()
                    return
                await asyncio.sleep(FLUSH_SECONDS * 4)
