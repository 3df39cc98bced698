"""Console use case: validate the statement, run it in a query worker against published tables."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from rat.config import Settings
from rat.core.errors import DeadlineExceeded, Invalid, Unavailable
from rat.core.ids import slug
from rat.core.specs import StorageSpec
from rat.engine.query import QueryJob, QueryOutput, QueryTable
from rat.engine.render import CompileError
from rat.engine.sqlcheck import single_select
from rat.plugins.protocols import ReadScope
from rat.runtime.workers import WorkerDied, WorkerPool
from rat.tables.service import TableRegistry

MAX_SQL_CHARS = 100_000


class QueryRequest(msgspec.Struct, kw_only=True):
    sql: str = ""
    namespace: str = ""
    limit: int | None = None
    format: str = "json"


class QueryService:
    def __init__(self, settings: Settings, pool: WorkerPool, registry: TableRegistry,
                 storage: StorageSpec, warehouse: str) -> None:
        self.settings = settings
        self.pool = pool
        self.registry = registry
        self.storage = storage
        self.warehouse = warehouse

    def _check(self, req: QueryRequest) -> tuple[str, str, int]:
        if not req.sql or not req.sql.strip():
            raise Invalid("sql must not be empty")
        if len(req.sql) > MAX_SQL_CHARS:
            raise Invalid("sql must be at most 100,000 characters")
        namespace = slug(req.namespace or "default", "namespace")
        limit = req.limit if req.limit is not None else self.settings.query_default_limit
        if limit < 1:
            raise Invalid("limit must be >= 1")
        try:
            sql = single_select(req.sql)
        except CompileError as exc:
            raise Invalid(str(exc).replace("compiled SQL", "query")) from None
        return sql, namespace, min(limit, self.settings.query_max_rows)

    async def run(self, req: QueryRequest, scope: ReadScope | None = None) -> bytes:
        """The QueryResult as JSON bytes, encoded once in the worker.

        With a `scope` (from the authorizer) unreadable tables do not exist for the query.
        """
        sql, namespace, limit = self._check(req)
        tables = [QueryTable(t.namespace, t.layer, t.name, t.metadata_location,
                             t.snapshot_id or 0)
                  for t in await self.registry.published()
                  if scope is None or scope.allows_table(t.namespace, t.layer, t.name)]
        job = QueryJob(sql=sql, namespace=namespace, limit=limit, tables=tables,
                       warehouse=self.warehouse, memory_limit=self.settings.query_memory_limit,
                       threads=2, storage=msgspec.to_builtins(self.storage))
        reply = await self._call(msgspec.msgpack.encode(job))
        if "error" in reply:
            raise Invalid(str(reply["error"]))
        raw = bytes(reply["json"])
        if req.limit is not None and req.limit > self.settings.query_max_rows:
            raw = raw.replace(b'"truncated":false', b'"truncated":true')
        return raw

    async def run_decoded(self, req: QueryRequest) -> QueryOutput:
        return msgspec.json.decode(await self.run(req), type=QueryOutput)

    async def _call(self, body: bytes) -> dict[str, Any]:
        timeout = self.settings.query_timeout_seconds
        async with self.pool.lease() as worker:
            try:
                raw = await asyncio.wait_for(worker.call("query", body), timeout)
            except TimeoutError:
                worker.kill()
                raise DeadlineExceeded(f"query exceeded {timeout} s and was stopped") from None
            except WorkerDied as exc:
                raise Unavailable(f"query worker stopped: {exc}") from None
        result: dict[str, Any] = msgspec.msgpack.decode(raw)
        return result
