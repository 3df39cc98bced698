"""Console queries in a query worker: one long-lived, locked-down DuckDB with a view per table.

Each job carries the current published tables (or, for time travel, an older snapshot of some);
the worker replaces only views whose snapshot changed, so publishing is visible to the very next
query. Statements pass `sqlguard.check` first; the connection is locked down once and the
lockdown is read back before the first query is served.
"""

from __future__ import annotations

import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import msgspec

from rat.config import parse_size
from rat.engine import duck, sqlguard
from rat.engine.encode import JSON, json_value, row_encoder, unique_names
from rat.engine.worker import Channel, RemoteError, register_job

if TYPE_CHECKING:
    import duckdb

__all__ = ["QueryError", "QueryOutput", "json_value", "run_select"]
EXPORT_BATCH_ROWS = 16_384
# Types pyarrow's CSV writer prints the way DuckDB would; everything else is cast to VARCHAR.
_CSV_NATIVE = frozenset({"boolean", "tinyint", "smallint", "integer", "bigint", "utinyint",
                         "usmallint", "uinteger", "ubigint", "float", "double", "varchar"})


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
    scratch_dir: str = ""
    timeout_seconds: float = 0.0
    clamped: bool = False
    format: str = "json"


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


class QueryTimeout(Exception):
    """The statement used up its time and was interrupted."""


class _Watchdog:
    """Interrupts a cursor once it has worked `seconds`; time waiting for the client is free."""

    def __init__(self, cursor: duckdb.DuckDBPyConnection, seconds: float) -> None:
        self.cursor = cursor
        self.seconds = seconds
        self.fired = False
        self._used = 0.0
        self._since: float | None = time.monotonic()
        self._lock = threading.Lock()
        self._done = threading.Event()

    def __enter__(self) -> _Watchdog:
        if self.seconds > 0:
            threading.Thread(target=self._watch, daemon=True, name="rat-query-watchdog").start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()

    def _elapsed(self) -> float:
        with self._lock:
            running = time.monotonic() - self._since if self._since is not None else 0.0
            return self._used + running

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            if self._elapsed() >= self.seconds:
                self.fired = True
                self.cursor.interrupt()
                return

    @contextmanager
    def paused(self) -> Iterator[None]:
        with self._lock:
            if self._since is not None:
                self._used += time.monotonic() - self._since
            self._since = None
        try:
            yield
        finally:
            with self._lock:
                self._since = time.monotonic()

    def check(self) -> None:
        if self.fired:
            raise QueryTimeout


class _Session:
    """The worker's DuckDB and the views registered in it."""

    def __init__(self) -> None:
        self.con: duckdb.DuckDBPyConnection | None = None
        self.reserved: frozenset[str] = frozenset()
        self.views: dict[tuple[str, str, str], tuple[str, int]] = {}
        self.schemas: set[tuple[str, str]] = set()
        self.attached: set[str] = set()

    def ensure(self, job: QueryJob) -> duckdb.DuckDBPyConnection:
        if self.con is None:
            self.con = _open(job)
            self.reserved = sqlguard.keywords(self.con)
        self._sync(self.con, job.tables)
        return self.con

    def _sync(self, con: duckdb.DuckDBPyConnection, tables: list[QueryTable]) -> None:
        import duckdb

        wanted = {(t.namespace, t.layer, t.name): t for t in tables}
        for key in [k for k in self.views if k not in wanted]:
            con.execute(f"DROP VIEW IF EXISTS {_qualified(*key)}")
            del self.views[key]
        for key, table in wanted.items():
            state = (table.metadata_location, table.snapshot_id)
            if self.views.get(key) == state:
                continue
            self._schema(con, table.namespace, table.layer)
            try:
                con.execute(
                    f"CREATE OR REPLACE VIEW {_qualified(*key)} AS SELECT * FROM iceberg_scan("
                    f"{duck.sql_str(table.metadata_location)}, "
                    f"snapshot_from_id={table.snapshot_id})")
            except duckdb.Error:
                # A table dropped or rewritten meanwhile; queries naming it fail to bind and
                # the next job tries again, while every other table stays queryable.
                continue
            self.views[key] = state

    def _schema(self, con: duckdb.DuckDBPyConnection, namespace: str, layer: str) -> None:
        if namespace not in self.attached:
            con.execute(f"ATTACH ':memory:' AS {duck.quote_ident(namespace)}")
            self.attached.add(namespace)
        if (namespace, layer) not in self.schemas:
            con.execute(f"CREATE SCHEMA IF NOT EXISTS "
                        f"{duck.quote_ident(namespace)}.{duck.quote_ident(layer)}")
            self.schemas.add((namespace, layer))

    @contextmanager
    def statement(self, job: QueryJob) -> Iterator[tuple[duckdb.DuckDBPyConnection, str]]:
        """A cursor in the job's namespace and the checked statement to run on it."""
        con = self.ensure(job)
        keys = frozenset((t.namespace, t.layer, t.name) for t in job.tables)
        sql = sqlguard.quote_table_names(job.sql, job.namespace, keys, self.reserved)
        cursor = con.cursor()
        try:
            if job.namespace in self.attached:
                cursor.execute(f"USE {duck.quote_ident(job.namespace)}")
            yield cursor, sqlguard.check(cursor, sql, job.namespace, keys)
        finally:
            cursor.close()


def _qualified(namespace: str, layer: str, name: str) -> str:
    return ".".join(duck.quote_ident(p) for p in (namespace, layer, name))


def _open(job: QueryJob) -> duckdb.DuckDBPyConnection:
    from rat.core.specs import StorageSpec

    storage = msgspec.convert(job.storage, StorageSpec) if job.storage else None
    # Each worker spills into its own directory: DuckDB's temp file names are per process.
    scratch = f"{job.scratch_dir.rstrip('/')}/{os.getpid()}"
    # Results are reported in UTC whatever the host's zone; no secret may ever be persisted.
    con = duck.connect(memory_limit=job.memory_limit, threads=job.threads, temp_dir=scratch,
                       storage=storage, config={
                           "allow_community_extensions": False,
                           "allow_persistent_secrets": False})
    con.execute("SET TimeZone = 'UTC'")
    allowed = [job.warehouse, scratch]
    duck.lock_down(con, allowed)
    problems = lockdown_problems(lockdown_report(con), allowed=allowed, threads=job.threads,
                                 memory_limit=job.memory_limit)
    if problems:
        con.close()
        raise RuntimeError("console lockdown not in force: " + "; ".join(problems))
    return con


_REPORTED = ("enable_external_access", "lock_configuration", "autoinstall_known_extensions",
             "autoload_known_extensions", "allow_community_extensions", "allow_persistent_secrets",
             "allow_unredacted_secrets", "allowed_configs", "allowed_directories",
             "allowed_paths", "memory_limit", "threads", "temp_directory")


def lockdown_report(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """The security-relevant settings and the secrets, as DuckDB reports them."""
    names = ", ".join(duck.sql_str(n) for n in _REPORTED)
    rows = con.execute(
        f"SELECT name, value FROM duckdb_settings() WHERE name IN ({names})").fetchall()
    secrets = con.execute("SELECT name FROM duckdb_secrets() ORDER BY name").fetchall()
    dirs = con.execute("SELECT current_setting('allowed_directories')").fetchone()
    return {"settings": {str(n): str(v) for n, v in rows},
            "allowed_directories": sorted(dirs[0]) if dirs else [],
            "secrets": [str(r[0]) for r in secrets]}


_EXPECTED = {"enable_external_access": "false", "lock_configuration": "true",
             "autoinstall_known_extensions": "false", "autoload_known_extensions": "false",
             "allow_community_extensions": "false", "allow_persistent_secrets": "false",
             "allow_unredacted_secrets": "false", "allowed_configs": "[]", "allowed_paths": "[]"}


def lockdown_problems(report: dict[str, Any], *, allowed: list[str], threads: int,
                      memory_limit: str) -> list[str]:
    """Differences between what DuckDB reports and the lockdown that was asked for."""
    settings: dict[str, str] = report["settings"]
    problems = [f"{k}={settings.get(k)!r}, expected {v!r}" for k, v in _EXPECTED.items()
                if settings.get(k) != v]
    if set(report["allowed_directories"]) != {d.rstrip("/") + "/" for d in allowed}:
        problems.append(f"allowed_directories={report['allowed_directories']!r}")
    if settings.get("threads") != str(threads):
        problems.append(f"threads={settings.get('threads')!r}, expected {threads}")
    limit = parse_size(memory_limit)
    if abs(parse_size(settings.get("memory_limit", "0")) - limit) > limit * 0.01:
        problems.append(f"memory_limit={settings.get('memory_limit')!r}, expected {memory_limit}")
    return problems


_SESSION = _Session()


def _fetch(rel: duckdb.DuckDBPyRelation, limit: int) -> tuple[list[str], list[Any], list[Any]]:
    names = unique_names(list(rel.columns))
    types = list(rel.types)
    return names, types, rel.limit(limit + 1).fetchall()


def run_select(con: duckdb.DuckDBPyConnection, sql: str, limit: int) -> QueryOutput:
    """Run one SELECT and encode up to `limit` rows; `truncated` when more exist."""
    import duckdb

    start = time.perf_counter()
    try:
        rel = con.sql(sql)
        if rel is None:
            raise QueryError("the statement returned no result")
        names, types, rows = _fetch(rel, limit)
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None
    truncated = len(rows) > limit
    encode = row_encoder(names, types)
    out_rows = [encode(row) for row in rows[:limit]]
    return QueryOutput(columns=[QueryColumn(n, str(t)) for n, t in zip(names, types, strict=True)],
                       rows=out_rows, total_rows=len(out_rows),
                       duration_ms=int((time.perf_counter() - start) * 1000), truncated=truncated)


def _console(job: QueryJob, work: Callable[[duckdb.DuckDBPyConnection, str, _Watchdog], Any]
             ) -> dict[str, Any]:
    """Run `work` on a checked statement under the job's deadline; errors become replies."""
    try:
        with _SESSION.statement(job) as (cursor, sql), \
                _Watchdog(cursor, job.timeout_seconds) as dog:
            try:
                return {"ok": work(cursor, sql, dog)}
            except QueryError:
                if dog.fired:
                    raise QueryTimeout from None
                raise
    except QueryTimeout:
        return {"timeout": True}
    except (sqlguard.Refused, QueryError) as exc:
        return {"error": str(exc)}


def _query_job(body: bytes, channel: Channel) -> bytes:
    job = msgspec.msgpack.decode(body, type=QueryJob)

    def work(cursor: duckdb.DuckDBPyConnection, sql: str, dog: _Watchdog) -> bytes:
        output = run_select(cursor, sql, job.limit)
        output.truncated = output.truncated or job.clamped
        return JSON.encode(output)

    reply = _console(job, work)
    if "ok" in reply:
        reply = {"json": reply.pop("ok")}
    return msgspec.msgpack.encode(reply)


class _Buffer(io.BytesIO):
    def take(self) -> bytes:
        data = self.getvalue()
        self.seek(0)
        self.truncate()
        return data


def _export_relation(cursor: duckdb.DuckDBPyConnection, sql: str, job: QueryJob
                     ) -> duckdb.DuckDBPyRelation:
    """The statement limited to the export cap, with unique names (and text columns for CSV)."""
    import duckdb

    try:
        rel = cursor.sql(sql)
        if rel is None:
            raise QueryError("the statement returned no result")
        exprs = []
        for i, (name, dtype) in enumerate(zip(unique_names(list(rel.columns)), rel.types,
                                              strict=True), start=1):
            expr = f"#{i}"
            if job.format == "csv" and dtype.id not in _CSV_NATIVE:
                expr = f"CAST({expr} AS VARCHAR)"
            exprs.append(f"{expr} AS {duck.quote_ident(name)}")
        return rel.limit(job.limit).project(", ".join(exprs))
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None


def _arrow_chunks(rel: duckdb.DuckDBPyRelation, fmt: str) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    reader = rel.to_arrow_reader(EXPORT_BATCH_ROWS)
    sink = _Buffer()
    if fmt == "csv":
        pacsv.write_csv(reader.schema.empty_table(), sink)
        yield sink.take()
        for batch in reader:
            pacsv.write_csv(batch, sink, pacsv.WriteOptions(include_header=False))
            yield sink.take()
        return
    with pa.ipc.new_stream(sink, reader.schema) as writer:
        yield sink.take()
        for batch in reader:
            writer.write_batch(batch)
            yield sink.take()
    yield sink.take()


def _ndjson_chunks(rel: duckdb.DuckDBPyRelation) -> Iterator[bytes]:
    encode = row_encoder(list(rel.columns), list(rel.types))
    while rows := rel.fetchmany(EXPORT_BATCH_ROWS):
        yield JSON.encode_lines([encode(r) for r in rows])


def export(cursor: duckdb.DuckDBPyConnection, sql: str, job: QueryJob,
           send: Callable[[bytes], None], dog: _Watchdog) -> int:
    """Stream the result as `job.format` chunks through `send`; returns the bytes sent."""
    import duckdb

    rel = _export_relation(cursor, sql, job)
    chunks = _ndjson_chunks(rel) if job.format == "ndjson" else _arrow_chunks(rel, job.format)
    sent = 0
    try:
        for chunk in chunks:
            dog.check()
            if chunk:
                with dog.paused():
                    send(chunk)
                sent += len(chunk)
    except duckdb.Error as exc:
        raise QueryError(str(exc)) from None
    return sent


def _export_job(body: bytes, channel: Channel) -> bytes:
    job = msgspec.msgpack.decode(body, type=QueryJob)

    def work(cursor: duckdb.DuckDBPyConnection, sql: str, dog: _Watchdog) -> int:
        return export(cursor, sql, job, lambda chunk: channel.rpc("chunk", chunk), dog)

    try:
        reply = _console(job, work)
    except RemoteError as exc:
        reply = {"error": f"download stopped: {exc}"}
    if "ok" in reply:
        reply = {"bytes": reply.pop("ok")}
    return msgspec.msgpack.encode(reply)


def _lockdown_job(body: bytes, channel: Channel) -> bytes:
    """The lockdown as the worker's DuckDB reports it now (introspection; not an API)."""
    con = _SESSION.con
    return msgspec.msgpack.encode(lockdown_report(con) if con is not None else {})


register_job("query", _query_job)
register_job("query_export", _export_job)
register_job("query_lockdown", _lockdown_job)
