"""Console use case: admit a statement, run it in a query worker, answer JSON or stream a file.

Statements are checked and executed in the query workers (DuckDB never runs here). The service
bounds capacity (all workers busy and 16 waiting -> 429), enforces the deadline (the worker
interrupts itself; a worker that has not answered 2 s later is killed and respawned -> 504) and
streams downloads with back-pressure: the worker hands over each chunk as an RPC that is only
answered once the HTTP response has room for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from rat.config import Settings
from rat.core.errors import DeadlineExceeded, Invalid, NotFound, RateLimited, Unavailable
from rat.core.ids import slug, table_name
from rat.core.specs import StorageSpec
from rat.engine.query import QueryJob, QueryOutput, QueryTable
from rat.plugins.protocols import ReadScope
from rat.query.models import ACCEPT_FORMATS, FORMATS, Download, QueryRequest
from rat.runtime.workers import JobFailed, WorkerDied, WorkerPool, WorkerProcess
from rat.tables.service import TableRegistry

log = logging.getLogger(__name__)
MAX_SQL_CHARS = 100_000
MAX_QUEUED = 16
KILL_GRACE_SECONDS = 2.0
DOWNLOAD_BUFFER_CHUNKS = 2

__all__ = ["Download", "QueryRequest", "QueryService"]


def pick_format(req: QueryRequest, accept: str | None) -> str:
    """`format` in the body wins; otherwise an Accept header naming a download type."""
    if req.format is not None:
        if req.format != "json" and req.format not in FORMATS:
            raise Invalid("format must be one of json, csv, ndjson, arrow")
        return req.format
    for part in (accept or "").split(","):
        found = ACCEPT_FORMATS.get(part.split(";")[0].strip().lower())
        if found:
            return found
    return "json"


class QueryService:
    def __init__(self, settings: Settings, pool: WorkerPool, registry: TableRegistry,
                 storage: StorageSpec, warehouse: str) -> None:
        self.settings = settings
        self.pool = pool
        self.registry = registry
        self.storage = storage
        self.warehouse = warehouse
        self.scratch_dir = str(Path(settings.data_path) / "tmp" / "query")
        self.admitted = 0

    @property
    def timeout(self) -> float:
        return float(self.settings.query_timeout_seconds)

    def _limit(self, requested: int | None, fmt: str) -> tuple[int, bool]:
        cap = self.settings.query_max_rows if fmt == "json" else \
            self.settings.query_export_max_rows
        default = self.settings.query_default_limit if fmt == "json" else cap
        limit = default if requested is None else requested
        if limit < 1:
            raise Invalid("limit must be >= 1")
        return min(limit, cap), limit > cap

    async def _job(self, req: QueryRequest, fmt: str, scope: ReadScope | None) -> bytes:
        if not req.sql or not req.sql.strip():
            raise Invalid("sql must not be empty")
        if len(req.sql) > MAX_SQL_CHARS:
            raise Invalid("sql must be at most 100,000 characters")
        namespace = slug(req.namespace or "default", "namespace")
        limit, clamped = self._limit(req.limit, fmt)
        job = QueryJob(sql=req.sql, namespace=namespace, limit=limit, clamped=clamped,
                       tables=await self._tables(namespace, req.as_of or {}, scope),
                       warehouse=self.warehouse, memory_limit=self.settings.query_memory_limit,
                       threads=2, storage=msgspec.to_builtins(self.storage),
                       scratch_dir=self.scratch_dir, timeout_seconds=self.timeout, format=fmt)
        return msgspec.msgpack.encode(job)

    async def _tables(self, namespace: str, as_of: dict[str, int],
                      scope: ReadScope | None) -> list[QueryTable]:
        """Published tables at their current snapshot, except those pinned by `as_of`.

        With a `scope` (from the authorizer) unreadable tables do not exist for the statement.
        """
        visible = [t for t in await self.registry.published()
                   if scope is None or scope.allows_table(t.namespace, t.layer, t.name)]
        names = {table_name(t.namespace, t.layer, t.name) for t in visible}
        pins: dict[str, int] = {}
        for name, snapshot_id in as_of.items():
            ident = self.registry.resolve(name, namespace)
            if ident not in names:
                raise NotFound(f"table {ident} not found")
            if snapshot_id not in {s.snapshot_id for s in await self.registry.history(ident)}:
                raise NotFound(f"snapshot {snapshot_id} is not in the history of table {ident}")
            pins[ident] = snapshot_id
        return [QueryTable(t.namespace, t.layer, t.name, t.metadata_location,
                           pins.get(table_name(t.namespace, t.layer, t.name), t.snapshot_id or 0))
                for t in visible]

    @contextlib.asynccontextmanager
    async def _worker(self) -> AsyncIterator[WorkerProcess]:
        """Lease a query worker: all busy with 16 waiting -> 429; runs never use this pool."""
        if self.admitted >= self.pool.size + MAX_QUEUED:
            raise RateLimited(f"query capacity exhausted: {self.pool.size} running and "
                              f"{MAX_QUEUED} waiting", retry_after=1)
        self.admitted += 1
        try:
            async with self.pool.lease() as worker:
                yield worker
        finally:
            self.admitted -= 1

    async def run(self, req: QueryRequest, scope: ReadScope | None = None) -> bytes:
        """The QueryResult as JSON bytes, encoded once in the worker."""
        body = await self._job(req, "json", scope)
        async with self._worker() as worker:
            try:
                raw = await asyncio.wait_for(worker.call("query", body),
                                             self.timeout + KILL_GRACE_SECONDS)
            except TimeoutError:
                worker.kill()
                raise self._deadline() from None
            except (WorkerDied, JobFailed) as exc:
                raise Unavailable(f"query engine unavailable: {exc}") from None
        reply: dict[str, Any] = msgspec.msgpack.decode(raw)
        _raise_for(reply, self)
        return bytes(reply["json"])

    async def run_decoded(self, req: QueryRequest) -> QueryOutput:
        return msgspec.json.decode(await self.run(req), type=QueryOutput)

    async def download(self, req: QueryRequest, fmt: str,
                       scope: ReadScope | None = None) -> Download:
        """Start a streamed download; errors before the first chunk are raised here."""
        media_type, ext = FORMATS[fmt]
        stream = _Stream(self, await self._job(req, fmt, scope))
        first = await stream.start()
        return Download(media_type=media_type, filename=f"query.{ext}",
                        chunks=stream.chunks(first))

    def _deadline(self) -> DeadlineExceeded:
        return DeadlineExceeded(f"query exceeded {self.settings.query_timeout_seconds} s "
                                "and was stopped")

    async def lockdown_reports(self) -> list[dict[str, Any]]:
        """What each idle query worker's DuckDB reports about its lockdown.

        For operators and tests; deliberately not exposed over HTTP.
        """
        reports = []
        for _ in range(self.pool.idle):
            async with self._worker() as worker:
                raw = await worker.call("query_lockdown", b"")
                reports.append({"pid": worker.pid, **msgspec.msgpack.decode(raw)})
        return reports


def _raise_for(reply: dict[str, Any], service: QueryService) -> None:
    if reply.get("timeout"):
        raise service._deadline()
    if "error" in reply:
        raise Invalid(str(reply["error"]))


@dataclass(frozen=True)
class _End:
    reply: dict[str, Any] | None = None
    error: Exception | None = None


class _Stream:
    """One download: a producer task runs the export job and feeds a small bounded queue."""

    def __init__(self, service: QueryService, body: bytes) -> None:
        self.service = service
        self.body = body
        self.queue: asyncio.Queue[bytes | _End] = asyncio.Queue(DOWNLOAD_BUFFER_CHUNKS)
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> bytes | None:
        self.task = asyncio.create_task(self._produce())
        try:
            return await self._next()
        except BaseException:
            await self.close()
            raise

    async def _produce(self) -> None:
        try:
            async with self.service._worker() as worker:
                raw = await worker.call("query_export", self.body, rpc=self._chunk)
            end = _End(reply=msgspec.msgpack.decode(raw))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # handed to the consumer, which raises it
            end = _End(error=exc)
        await self.queue.put(end)

    async def _chunk(self, method: str, body: Any) -> None:
        if method != "chunk":
            raise RuntimeError(f"unknown request {method!r}")
        # A client that stops reading for a whole timeout gives its worker back.
        await asyncio.wait_for(self.queue.put(bytes(body)), self.service.timeout)

    async def _next(self) -> bytes | None:
        try:
            item = await asyncio.wait_for(self.queue.get(),
                                          self.service.timeout + KILL_GRACE_SECONDS)
        except TimeoutError:
            await self.close()
            raise self.service._deadline() from None
        if isinstance(item, bytes):
            return item
        if item.error is not None:
            if isinstance(item.error, (WorkerDied, JobFailed)):
                raise Unavailable(f"query engine unavailable: {item.error}")
            raise item.error
        _raise_for(item.reply or {}, self.service)
        return None

    async def chunks(self, first: bytes | None) -> AsyncIterator[bytes]:
        try:
            chunk = first
            while chunk is not None:
                yield chunk
                chunk = await self._next()
        except Exception as exc:  # headers are sent: the body just ends early
            log.warning("query download ended early: %s", exc)
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop the producer; a worker interrupted mid-job is killed and replaced by the pool."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
