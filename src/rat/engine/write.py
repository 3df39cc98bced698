"""The staged write: normalise the batch for Iceberg, write field-id'd parquet, plan file changes.

A merge strategy turns the batch R (a DuckDB relation) and the staged table T into a `WritePlan`:
data files to remove and parquet files it wrote. The host commits the plan as one snapshot on the
run's branch. Strategies never rewrite files that hold no affected rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import msgspec

from rat.core.specs import StageState
from rat.engine.config import BUILTIN_STRATEGIES, STRATEGY_KEYS, PipelineConfig
from rat.engine.duck import quote_ident, sql_str

if TYPE_CHECKING:
    import duckdb
    from pyiceberg.table import StaticTable

BATCH = "__rat_batch"
TARGET_FILE_BYTES = 256 * 1024 * 1024
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
    warnings: list[str] = msgspec.field(default_factory=list)


class WriteContext:
    """Everything a strategy needs: the batch, the staged table, and a parquet writer."""

    def __init__(self, *, con: duckdb.DuckDBPyConnection, config: PipelineConfig,
                 stage: StageState, table: StaticTable, run_id: str, run_started_at: str,
                 log: Callable[[str, str], None]) -> None:
        self.con = con
        self.config = config
        self.stage = stage
        self.table = table
        self.run_id = run_id
        self.run_started_at = run_started_at
        self.log = log
        self._files = 0

    @property
    def data_dir(self) -> str:
        return self.table.location().rstrip("/") + "/data"

    def base_files(self) -> list[Any]:
        """Data files (pyiceberg DataFile) of the staged base snapshot."""
        snap_id = self.stage.base_snapshot_id
        if snap_id is None:
            return []
        return [task.file for task in self.table.scan(snapshot_id=snap_id).plan_files()]

    def target_scan(self, files: list[str] | None = None) -> str:
        """A table expression over T at the base snapshot (optionally only some files)."""
        if files is not None:
            if not files:
                return "(SELECT * FROM " + self.batch_empty_like_target() + ")"
            return "read_parquet([" + ", ".join(sql_str(f) for f in files) + "])"
        return (f"iceberg_scan({sql_str(self.stage.metadata_location)}, "
                f"snapshot_from_id={self.stage.base_snapshot_id})")

    def batch_empty_like_target(self) -> str:
        return (f"iceberg_scan({sql_str(self.stage.metadata_location)}, "
                f"snapshot_from_id={self.stage.base_snapshot_id}) LIMIT 0")

    def write(self, select_sql: str) -> tuple[list[str], int]:
        """COPY `select_sql` to new parquet data files carrying the table's field ids.

        Returns the written paths (empty when the query yields no rows) and the row count.
        """
        self._files += 1
        if "://" not in self.data_dir:
            Path(self.data_dir).mkdir(parents=True, exist_ok=True)
        stem = f"{self.run_id.replace('-', '')}-{uuid.uuid4().hex[:8]}-{self._files:04d}"
        target = f"{self.data_dir}/{stem}.parquet"
        ids = field_ids_clause(self.table.schema())
        rows, paths = self.con.execute(
            f"COPY ({select_sql}) TO {sql_str(target)} (FORMAT parquet, COMPRESSION zstd, "
            f"RETURN_FILES true, FIELD_IDS {ids})").fetchone() or (0, [])
        if not rows:
            _remove_quietly(paths)
            return [], 0
        return list(paths), int(rows)

    def target_columns(self) -> list[str]:
        return [f.name for f in self.table.schema().fields]

    def batch_select(self, extra: dict[str, str] | None = None) -> str:
        """SELECT of the batch in the table's column order; missing columns as NULL."""
        batch_cols = set(self.batch_columns())
        parts = []
        for name in self.target_columns():
            if extra and name in extra:
                parts.append(f"{extra[name]} AS {quote_ident(name)}")
            elif name in batch_cols:
                parts.append(quote_ident(name))
            else:
                parts.append(f"NULL AS {quote_ident(name)}")
        return "SELECT " + ", ".join(parts) + f" FROM {BATCH}"

    def batch_columns(self) -> list[str]:
        return [str(r[0]) for r in self.con.execute(f"DESCRIBE {BATCH}").fetchall()]


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
    described = con.execute(f"DESCRIBE ({sql})").fetchall()
    names = [str(r[0]) for r in described]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise WriteError(f"the result has duplicate column names: {', '.join(dupes)}")
    parts = []
    for name, dtype in ((str(r[0]), str(r[1])) for r in described):
        target = _CASTS.get(dtype) or ("VARCHAR" if dtype.startswith(("ENUM", "UNION")) else None)
        col = quote_ident(name)
        parts.append(f"CAST({col} AS {target}) AS {col}" if target else col)
    return f"SELECT {', '.join(parts)} FROM ({sql})", names


class MergeStrategy(Protocol):
    """A merge strategy. `required` keys are validated at publish and at run start."""

    name: ClassVar[str]
    required: ClassVar[tuple[str, ...]]
    replace_schema: ClassVar[bool]

    def plan(self, ctx: WriteContext) -> WritePlan:
        """Write new files for the batch in BATCH and list the base files to remove."""


class FullRefresh:
    """Replace the whole table with R. Zero rows leave an empty table."""

    name = "full_refresh"
    required: ClassVar[tuple[str, ...]] = ()
    replace_schema = True

    def plan(self, ctx: WriteContext) -> WritePlan:
        removed = [f.file_path for f in ctx.base_files()]
        added, rows = ctx.write(ctx.batch_select())
        return WritePlan(removed_files=removed, added_files=added, rows_written=rows,
                         files_rewritten=0)


class AppendOnly:
    """Insert every row of R; no key, no dedup."""

    name = "append_only"
    required: ClassVar[tuple[str, ...]] = ()
    replace_schema = False

    def plan(self, ctx: WriteContext) -> WritePlan:
        added, rows = ctx.write(ctx.batch_select())
        return WritePlan(added_files=added, rows_written=rows)


STRATEGIES: dict[str, type[MergeStrategy]] = {"full_refresh": FullRefresh,
                                              "append_only": AppendOnly}


def register_strategy(strategy: type[MergeStrategy]) -> None:
    """Add a plugin merge strategy (runner-side slot, called in the server and every worker).

    Plugin names never shadow built-ins; `required` keys are validated at publish and run start.
    """
    if strategy.name in BUILTIN_STRATEGIES:
        raise ValueError(f"merge strategy {strategy.name!r} is built in and cannot be replaced")
    STRATEGIES[strategy.name] = strategy
    STRATEGY_KEYS[strategy.name] = tuple(strategy.required)
