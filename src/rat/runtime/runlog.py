"""Run log writer: buffers records and flushes them in batches so logs survive cancels and crashes."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime

from rat.core.timefmt import utcnow
from rat.db.database import Database
from rat.db.queries import load_queries

Q = load_queries("rat.runs")
FLUSH_SECONDS = 0.25
MAX_MESSAGE_BYTES = 8 * 1024
MAX_RECORDS = 10_000
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
            await self.flush()

    async def flush(self) -> None:
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        await self.db.executemany(Q["insert_logs"], batch)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()
