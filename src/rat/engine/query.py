"""Console queries in a query worker: one long-lived, locked-down DuckDB with a view per table.

Each job carries the current published tables; the worker replaces only views whose snapshot
changed, so publishing is visible to the very next query.
"""

from __future__ import annotations

import base64
import decimal
import math
import time
from datetime import date, datetime, timedelta
from datetime import time as dtime
from typing import TYPE_CHECKING, Any
from uuid import UUID

import msgspec

from rat.engine import duck
from rat.engine.worker import Channel, register_job

if TYPE_CHECKING:
    import duckdb


class QueryTable(msgspec.Struct, frozen=True):
    namespace: str
    layer: str
    name: str
    metadata_location: str
    snapshot_id: int


class QueryJob(msgspec.Struct, frozen=True, kw_only=True):
    sql: str
    namespace: str
    limit: int
    tables: list[QueryTable]
    warehouse: str
    memory_limit: str
    threads: int
    storage: Any = None


class QueryColumn(msgspec.Struct):
    name: str
    type: str


class QueryOutput(msgspec.Struct, kw_only=True):
    columns: list[QueryColumn]
    rows: list[dict[str, Any]]
    total_rows: int
    duration_ms: int
    truncated: bool


class QueryError(Exception):
    """A user-facing query failure (parser, binder or runtime message from DuckDB)."""


class _Session:
    """The worker's DuckDB and the views registered in it."""

    def __init__(self) -> None:
        self.con: duckdb.DuckDBPyConnection | None = None
        self.views: dict[tuple[str, str, str], tuple[str, int]] = {}
        self.schemas: set[tuple[str, str]] = set()
        self.attached: set[str] = set()

    def ensure(self, job: QueryJob) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            from rat.core.specs import StorageSpec

            storage = msgspec.convert(job.storage, StorageSpec) if job.storage else None
            self.con = duck.connect(memory_limit=job.memory_limit, threads=job.threads,
                                    storage=storage)
            duck.lock_down(self.con, [job.warehouse])
        self._sync(self.con, job.tables)
        return self.con

    def _sync(self, con: duckdb.DuckDBPyConnection, tables: list[QueryTable]) -> None:
        wanted = {(t.namespace, t.layer, t.name): t for t in tables}
        for key in [k for k in self.views if k not in wanted]:
            con.execute(f"DROP VIEW IF EXISTS {_qualified(*key)}")
            del self.views[key]
        for key, table in wanted.items():
            state = (table.metadata_location, table.snapshot_id)
            if self.views.get(key) == state:
                continue
            self._schema(con, table.namespace, table.layer)
            con.execute(
                f"CREATE OR REPLACE VIEW {_qualified(*key)} AS SELECT * FROM iceberg_scan("
                f"{duck.sql_str(table.metadata_location)}, snapshot_from_id={table.snapshot_id})")
            self.views[key] = state

    def _schema(self, con: duckdb.DuckDBPyConnection, namespace: str, layer: str) -> None:
        if namespace not in self.attached:
            con.execute(f"ATTACH ':memory:' AS {duck.quote_ident(namespace)}")
            self.attached.add(namespace)
        if (namespace, layer) not in self.schemas:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS "
                        f"{duck.quote_ident(namespace)}.{duck.quote_ident(layer)}")
            self.schemas.add((namespace, layer))


def _qualified(namespace: str, layer: str, name: str) -> str:
    return ".".join(duck.quote_ident(p) for p in (namespace, layer, name))


_SESSION = _Session()


def json_value(value: Any) -> Any:
    """Encode one cell the way the API promises (exact decimals, ISO times, base64 blobs)."""
    converters: list[tuple[type | tuple[type, ...], Any]] = [
        (bool, lambda v: v),
        (int, lambda v: v if -(2**63) <= v < 2**63 else str(v)),
        (float, lambda v: v if math.isfinite(v) else str(v).replace("inf", "Infinity")
         .replace("nan", "NaN")),
        (decimal.Decimal, lambda v: v),
        ((datetime, date, dtime), lambda v: v.isoformat()),
        (timedelta, str),
        (bytes, lambda v: base64.b64encode(v).decode()),
        (UUID, str),
        (list, lambda v: [json_value(x) for x in v]),
        (dict, lambda v: {str(k): json_value(x) for k, x in v.items()}),
    ]
    if value is None:
        return None
    for kinds, convert in converters:
        if isinstance(value, kinds):
            return convert(value)
    return value if isinstance(value, str) else str(value)


def run_select(con: duckdb.DuckDBPyConnection, sql: str, limit: int) -> QueryOutput:
    import duckdb

    start = time.perf_counter()
    try:
        rel = con.sql(sql)
        if rel is None:
            raise QueryError("the statement returned no result")
        rows = rel.limit(limit + 1).fetchall()
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None
    names = list(rel.columns)
    types = [str(t) for t in rel.types]
    truncated = len(rows) > limit
    rows = rows[:limit]
    out_rows = [{n: json_value(v) for n, v in zip(names, row, strict=True)} for row in rows]
    return QueryOutput(columns=[QueryColumn(n, t) for n, t in zip(names, types, strict=True)],
                       rows=out_rows, total_rows=len(out_rows),
                       duration_ms=int((time.perf_counter() - start) * 1000), truncated=truncated)


def _query_job(body: bytes, channel: Channel) -> bytes:
    job = msgspec.msgpack.decode(body, type=QueryJob)
    con = _SESSION.ensure(job)
    cursor = con.cursor()
    try:
        cursor.execute(f"USE {duck.quote_ident(job.namespace)}") if \
            job.namespace in _SESSION.attached else None
        try:
            output = run_select(cursor, job.sql, job.limit)
        except QueryError as exc:
            return msgspec.msgpack.encode({"error": str(exc)})
    finally:
        cursor.close()
    return msgspec.msgpack.encode({"json": _JSON.encode(output)})


# DECIMAL values leave as exact JSON numbers, as the API promises.
_JSON = msgspec.json.Encoder(decimal_format="number")


register_job("query", _query_job)
