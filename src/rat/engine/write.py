"""The staged write: normalise the batch for Iceberg, write field-id'd parquet, plan file changes.

A merge strategy turns the batch R (the DuckDB view BATCH, see rat.engine.batch) and the staged
table T into a `WritePlan`: data files to remove and parquet files it wrote. The host commits the
plan as one snapshot on the run's branch. Strategies never rewrite files that hold no affected
rows; the key- and partition-based ones live in rat.engine.strategies, file pruning in
rat.engine.prune.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import msgspec

from rat.core.specs import StageState
from rat.engine.batch import BATCH as BATCH  # re-exported: where every strategy reads R
from rat.engine.batch import Batch, batch_types, describe
from rat.engine.catalog import duck_type, partition_spec
from rat.engine.config import BUILTIN_STRATEGIES, STRATEGY_KEYS, PipelineConfig
from rat.engine.duck import quote_ident, sql_str

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from pyiceberg.manifest import DataFile
    from pyiceberg.table import StaticTable

# Unpartitioned writes roll over to a new file at this size, so a later merge that touches a few
# keys rewrites a few files instead of the whole table.
TARGET_FILE_BYTES = 128 * 1024 * 1024
_PART = "__rat_part"
# DuckDB types Iceberg cannot store, mapped to the closest type it can.
_CASTS = {
    "TINYINT": "INTEGER", "SMALLINT": "INTEGER", "UTINYINT": "INTEGER", "USMALLINT": "INTEGER",
    "UINTEGER": "BIGINT", "UBIGINT": "DECIMAL(20,0)", "HUGEINT": "DECIMAL(38,0)",
    "UHUGEINT": "DECIMAL(38,0)", "TIMESTAMP_S": "TIMESTAMP", "TIMESTAMP_MS": "TIMESTAMP",
    "TIMESTAMP_NS": "TIMESTAMP", "TIME WITH TIME ZONE": "TIME", "INTERVAL": "VARCHAR",
    "BIT": "VARCHAR", "JSON": "VARCHAR", "VARINT": "VARCHAR", "BIGNUM": "VARCHAR",
}


class WriteError(Exception):
    """The batch cannot be written with the configured strategy; the message is user-facing."""


class WritePlan(msgspec.Struct, kw_only=True):
    removed_files: list[str] = msgspec.field(default_factory=list)
    added_files: list[str] = msgspec.field(default_factory=list)
    rows_written: int = 0
    rows_deleted: int = 0
    files_rewritten: int = 0
    # Strategy-specific counters for the write phase profile (e.g. scd2's rows_closed).
    counters: dict[str, int] = msgspec.field(default_factory=dict)
    warnings: list[str] = msgspec.field(default_factory=list)


def key_match(left: str, right: str, keys: Iterable[str]) -> str:
    """Null-safe equality of `keys` between two relation aliases."""
    return " AND ".join(f"{left}.{quote_ident(k)} IS NOT DISTINCT FROM {right}.{quote_ident(k)}"
                        for k in keys)


class WriteContext:
    """Everything a strategy needs: the batch, the staged table, a reader and a parquet writer."""

    def __init__(self, *, con: duckdb.DuckDBPyConnection, config: PipelineConfig,
                 stage: StageState, table: StaticTable, batch: Batch, run_id: str,
                 run_started_at: str, log: Callable[[str, str], None],
                 query: Callable[[], AbstractContextManager[None]] | None = None) -> None:
        """`query` wraps each COPY when BATCH is streamed, i.e. when the COPY runs the query."""
        self.con = con
        self.query = query or nullcontext
        self.batch = batch
        self.config = config
        self.stage = stage
        self.table = table
        self.run_id = run_id
        self.run_started_at = run_started_at
        self.log = log
        self._files = 0
        self._base: list[DataFile] | None = None
        self._batch: dict[str, str] | None = None

    @property
    def data_dir(self) -> str:
        return self.table.location().rstrip("/") + "/data"

    def base_files(self) -> list[DataFile]:
        """Live data files of the staged base snapshot (read from the manifests once)."""
        if self._base is None:
            snap = self.table.snapshot_by_id(self.stage.base_snapshot_id) \
                if self.stage.base_snapshot_id is not None else None
            io = self.table.io
            self._base = [] if snap is None else [
                entry.data_file for manifest in snap.manifests(io)
                for entry in manifest.fetch_manifest_entry(io, discard_deleted=True)]
        return self._base

    def batch_types(self) -> dict[str, str]:
        if self._batch is None:
            self._batch = batch_types(self.con)
        return self._batch

    def target_columns(self) -> list[str]:
        return [f.name for f in self.table.schema().fields]

    def scan(self, paths: list[str], *, filename: bool = False) -> str:
        """A table expression over some data files of T, in T's current schema.

        Columns added after a file was written read as NULL; widened columns read widened.
        Files are matched by column name: RAT never renames, and a full_refresh that drops or
        retypes a column replaces every file. (read_parquet's field-id `schema=` option is not
        used: with it, DuckDB 1.5 reads every column and holds ~1 GB for a 6M-row key join.)
        """
        files = ", ".join(sql_str(p) for p in paths)
        raw = (f"read_parquet([{files}], union_by_name=true, hive_partitioning=false"
               f"{', filename=true' if filename else ''})")
        present = describe(self.con, raw)
        parts = []
        for field in self.table.schema().fields:
            col, target = quote_ident(field.name), duck_type(field.field_type)
            if field.name not in present:
                parts.append(f"CAST(NULL AS {target}) AS {col}")
            elif present[field.name] != target:
                parts.append(f"CAST({col} AS {target}) AS {col}")
            else:
                parts.append(col)
        if filename:
            parts.append("filename")
        return f"(SELECT {', '.join(parts)} FROM {raw})"

    def projection(self, alias: str, extra: dict[str, str] | None = None) -> str:
        """T's columns in T's order from batch alias `alias`: cast to T's types, missing as NULL.

        `extra` maps a column to an SQL expression that replaces it (e.g. scd2 validity columns).
        """
        batch = self.batch_types()
        parts = []
        for field in self.table.schema().fields:
            name, target = field.name, duck_type(field.field_type)
            col = quote_ident(name)
            if extra and name in extra:
                parts.append(f"CAST({extra[name]} AS {target}) AS {col}")
            elif name not in batch:
                parts.append(f"CAST(NULL AS {target}) AS {col}")
            elif batch[name] != target:
                parts.append(f"CAST({alias}.{col} AS {target}) AS {col}")
            else:
                parts.append(f"{alias}.{col}")
        return ", ".join(parts)

    def batch_select(self, extra: dict[str, str] | None = None) -> str:
        """SELECT of the whole batch in T's shape."""
        return f"SELECT {self.projection('b', extra)} FROM {BATCH} b"

    def write(self, select_sql: str) -> tuple[list[str], int]:
        """COPY `select_sql` (T's columns) to new parquet data files carrying T's field ids.

        Partitioned tables get exactly one file per partition value, because the catalog infers
        a file's partition from its column statistics. Returns the paths (empty when the query
        yields no rows) and the row count.
        """
        self._files += 1
        if "://" not in self.data_dir:
            Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        stem = f"{self.run_id.replace('-', '')}-{uuid.uuid4().hex[:8]}-{self._files:04d}"
        target = f"{self.data_dir}/{stem}"
        ids = field_ids_clause(self.table.schema())
        part = self._partition_key()
        if part:
            select_sql = f"SELECT *, {part} AS {_PART} FROM ({select_sql})"
            layout = f"PARTITION_BY ({_PART})"
        else:
            layout = f"FILE_SIZE_BYTES {TARGET_FILE_BYTES}"
        with self.query():
            rows, paths = self.con.execute(
                f"COPY ({select_sql}) TO {sql_str(target)} (FORMAT parquet, COMPRESSION zstd, "
                f"{layout}, RETURN_FILES true, FIELD_IDS {ids})").fetchone() or (0, [])
        if not rows:
            _remove_quietly(paths)
            return [], 0
        return list(paths), int(rows)

    def _partition_key(self) -> str | None:
        """One grouping value per Iceberg partition (hashed: directory names stay short and safe).

        A hash collision between two partitions would make the commit fail (never mix data).
        """
        spec = self.table.spec()
        if not spec.fields:
            return None
        schema = self.table.schema()
        exprs = []
        for pf in spec.fields:
            source = schema.find_field(pf.source_id)
            transform = str(pf.transform).split("[")[0].lower()
            exprs.append(_transform_expr(quote_ident(source.name), str(source.field_type),
                                         transform))
        return f"hash({', '.join(exprs)})"


def partition_warning(table: Any, config: PipelineConfig) -> str | None:
    """partition_by applies at table creation only; say so when the config has moved on."""
    current = partition_spec(table)
    wanted = [{"column": p.column, "transform": p.transform} for p in config.partition_by]
    if current == wanted:
        return None

    def show(spec: list[dict[str, str]]) -> str:
        return ", ".join(f"{p['transform']}({p['column']})" for p in spec) or "unpartitioned"

    return (f"partition_by ({show(wanted)}) is applied only when the table is created; "
            f"the table stays {show(current)} until a rebuild")


def _transform_expr(col: str, iceberg_type: str, transform: str) -> str:
    """DuckDB expression grouping rows exactly like the Iceberg transform (UTC calendar)."""
    if transform == "identity":
        return col
    if iceberg_type == "date":
        base = f"CAST({col} AS TIMESTAMP)"
    elif iceberg_type.startswith("timestamptz"):
        base = f"make_timestamp(epoch_us({col}))"
    else:
        base = col
    return f"date_trunc('{transform}', {base})"


def _remove_quietly(paths: list[str]) -> None:
    """Drop an empty file DuckDB wrote for a zero-row COPY (object stores: left to the reaper)."""
    for path in paths:
        if "://" not in path:
            Path(path).unlink(missing_ok=True)


def field_ids_clause(schema: Any) -> str:
    """DuckDB's FIELD_IDS struct for an Iceberg schema, nested types included."""
    return "{" + ", ".join(f"{sql_str(f.name)}: {_field_ids(f)}" for f in schema.fields) + "}"


def _field_ids(field: Any) -> str:
    from pyiceberg.types import ListType, MapType, StructType

    ftype = field.field_type
    if isinstance(ftype, StructType):
        inner = ", ".join(f"{sql_str(f.name)}: {_field_ids(f)}" for f in ftype.fields)
        return f"{{__duckdb_field_id: {field.field_id}, {inner}}}"
    if isinstance(ftype, ListType):
        return f"{{__duckdb_field_id: {field.field_id}, element: {_field_ids(ftype.element_field)}}}"
    if isinstance(ftype, MapType):
        return (f"{{__duckdb_field_id: {field.field_id}, key: {_field_ids(ftype.key_field)}, "
                f"value: {_field_ids(ftype.value_field)}}}")
    return str(field.field_id)


def iceberg_safe_select(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[str, list[str]]:
    """Wrap `sql` so every column has a type Iceberg can store; refuse duplicate column names."""
    # The newline before each `)` keeps a trailing `--` comment from swallowing it, should `sql`
    # ever arrive without the normalisation of rat.engine.sqlcheck.single_select.
    described = con.execute(f"DESCRIBE (\n{sql}\n)").fetchall()
    names = [str(r[0]) for r in described]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise WriteError(f"the result has duplicate column names: {', '.join(dupes)}")
    parts = []
    for name, dtype in ((str(r[0]), str(r[1])) for r in described):
        target = _CASTS.get(dtype) or ("VARCHAR" if dtype.startswith(("ENUM", "UNION")) else None)
        col = quote_ident(name)
        parts.append(f"CAST({col} AS {target}) AS {col}" if target else col)
    return f"SELECT {', '.join(parts)} FROM (\n{sql}\n)", names


class MergeStrategy(Protocol):
    """The plugin contract (docs/plugins.md); `Strategy` adds optional hooks with defaults."""

    name: ClassVar[str]
    required: ClassVar[tuple[str, ...]]
    replace_schema: ClassVar[bool]

    def plan(self, ctx: WriteContext) -> WritePlan:
        """Write new files for the batch and list the base files to remove."""


class Strategy:
    """A merge strategy. `required` config keys are validated at publish and at run start.

    `check` runs before the table is touched (a bad batch never stages anything); `plan` writes
    new files for the batch and lists the base files to remove.
    """

    name: ClassVar[str]
    required: ClassVar[tuple[str, ...]] = ()
    # True: T's schema becomes exactly R's (full_refresh). False: add columns, widen safely.
    replace_schema: ClassVar[bool] = False
    # True: a zero-row batch still commits (full_refresh empties the table).
    writes_empty: ClassVar[bool] = False
    # True: `plan` reads BATCH exactly once and copes with zero rows, so R is never stored: the
    # query streams straight into the table's data files (the COPY's time counts as execute).
    single_pass: ClassVar[bool] = False

    def check(self, con: duckdb.DuckDBPyConnection, config: PipelineConfig) -> None:
        """Refuse a batch this strategy cannot apply (raise WriteError)."""

    def table_schema(self, schema: pa.Schema, config: PipelineConfig) -> pa.Schema:
        """The table schema to create or evolve to, given the batch's schema."""
        return schema

    def empty_warnings(self, config: PipelineConfig) -> list[str]:
        """Warnings for a zero-row batch that this strategy skips."""
        return []

    def plan(self, ctx: WriteContext) -> WritePlan:
        raise NotImplementedError


def require_columns(con: duckdb.DuckDBPyConnection, columns: Iterable[str], setting: str) -> None:
    """A key/partition column missing from the result fails the run, naming the column."""
    present = batch_types(con)
    for column in columns:
        if column not in present:
            raise WriteError(f"{setting} column {column!r} is not a column of the result")


class FullRefresh(Strategy):
    """Replace the whole table with R. Zero rows leave an empty table."""

    name = "full_refresh"
    replace_schema = True
    writes_empty = True
    single_pass = True

    def plan(self, ctx: WriteContext) -> WritePlan:
        base = ctx.base_files()
        added, rows = ctx.write(ctx.batch_select())
        return WritePlan(removed_files=[f.file_path for f in base], added_files=added,
                         rows_written=rows, rows_deleted=sum(f.record_count for f in base))


class AppendOnly(Strategy):
    """Insert every row of R; no key, no dedup."""

    name = "append_only"

    def plan(self, ctx: WriteContext) -> WritePlan:
        added, rows = ctx.write(ctx.batch_select())
        return WritePlan(added_files=added, rows_written=rows)


# The registry. Built-ins here and in rat.engine.strategies (which adds its own on import; the
# run imports the registry from there), plugins through register_strategy.
STRATEGIES: dict[str, type[Strategy]] = {"full_refresh": FullRefresh, "append_only": AppendOnly}


def register_strategy(strategy: type[MergeStrategy]) -> None:
    """Add a plugin merge strategy (runner-side slot, called in the server and every worker).

    Plugin names never shadow built-ins; `required` keys are validated at publish and run start.
    A class that only implements the MergeStrategy protocol gets Strategy's default hooks.
    """
    if strategy.name in BUILTIN_STRATEGIES:
        raise ValueError(f"merge strategy {strategy.name!r} is built in and cannot be replaced")
    full = strategy if issubclass(strategy, Strategy) else \
        type(strategy.__name__, (strategy, Strategy), {})
    STRATEGIES[strategy.name] = full
    STRATEGY_KEYS[strategy.name] = tuple(strategy.required)
