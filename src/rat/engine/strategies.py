"""The key- and partition-based merge strategies (§5.3, §5.5-5.7) and the strategy registry.

All of them are copy-on-write: files holding affected rows are rewritten without those rows (or
with scd2's closed rows), untouched files stay referenced, and the new rows are written in the
same COPY, so one run adds one set of files and commits one snapshot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rat.engine import prune
from rat.engine.batch import batch_types
from rat.engine.duck import quote_ident, sql_str
from rat.engine.write import (
    BATCH,
    Strategy,
    WriteContext,
    WriteError,
    WritePlan,
    key_match,
    require_columns,
)
from rat.engine.write import STRATEGIES as STRATEGIES  # re-exported: the full registry

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
    from pyiceberg.manifest import DataFile

    from rat.engine.config import PipelineConfig

CLOSE = "__rat_close"


def replace_rows(ctx: WriteContext, keys: list[str], candidates: list[DataFile],
                 new_rows: int) -> WritePlan:
    """Delete T rows whose `keys` (null-safe) occur in the batch, insert the whole batch.

    `candidates` are the files that may hold such rows; only those that really do are rewritten.
    """
    hits = prune.matching(ctx, candidates, keys, BATCH)
    touched = [f.file_path for f in candidates if f.file_path in hits]
    sql = ctx.batch_select()
    if touched:
        kept = (f"SELECT {', '.join('t.' + quote_ident(c) for c in ctx.target_columns())} "
                f"FROM {ctx.scan(touched)} t ANTI JOIN {BATCH} k ON {key_match('t', 'k', keys)}")
        sql = f"{kept} UNION ALL {sql}"
    added, _total = ctx.write(sql)
    return WritePlan(removed_files=touched, added_files=added, rows_written=new_rows,
                     rows_deleted=sum(hits.values()), files_rewritten=len(touched))


class KeyedStrategy(Strategy):
    """A strategy keyed on `unique_key`, which every row of R must carry."""

    required: ClassVar[tuple[str, ...]] = ("unique_key",)

    def check(self, con: duckdb.DuckDBPyConnection, config: PipelineConfig) -> None:
        require_columns(con, config.unique_key, "unique_key")


class Incremental(KeyedStrategy):
    """Upsert: dedup R on the key (last row wins), replace T rows with those keys."""

    name = "incremental"

    def plan(self, ctx: WriteContext) -> WritePlan:
        keys = ctx.config.unique_key
        dropped = ctx.batch.dedup(keys)
        if dropped:
            ctx.log("info", f"incremental: {dropped} duplicate keys in the result (last row wins)")
        files = prune.candidates(ctx, ctx.base_files(), keys, BATCH)
        return replace_rows(ctx, keys, files, ctx.batch.rows())


class DeleteInsert(KeyedStrategy):
    """Delete T rows whose key is in R, insert all of R (duplicates in R survive)."""

    name = "delete_insert"

    def plan(self, ctx: WriteContext) -> WritePlan:
        keys = ctx.config.unique_key
        files = prune.candidates(ctx, ctx.base_files(), keys, BATCH)
        return replace_rows(ctx, keys, files, ctx.batch.rows())


class Snapshot(Strategy):
    """Partition replacement: delete T rows whose partition_column value is in R, insert R."""

    name = "snapshot"
    required: ClassVar[tuple[str, ...]] = ("partition_column",)

    def check(self, con: duckdb.DuckDBPyConnection, config: PipelineConfig) -> None:
        require_columns(con, [config.partition_column], "partition_column")

    def plan(self, ctx: WriteContext) -> WritePlan:
        column = ctx.config.partition_column
        base = ctx.base_files()
        rows = ctx.batch.rows()
        whole = prune.partition_files(ctx, base, column, BATCH)
        if whole is None:
            files = prune.candidates(ctx, base, [column], BATCH)
            return replace_rows(ctx, [column], files, rows)
        added, _total = ctx.write(ctx.batch_select())
        return WritePlan(removed_files=[f.file_path for f in whole], added_files=added,
                         rows_written=rows, rows_deleted=sum(f.record_count for f in whole))


class Scd2(KeyedStrategy):
    """Slowly changing dimension type 2: version a key when a non-key column changed (§5.6)."""

    name = "scd2"

    def check(self, con: duckdb.DuckDBPyConnection, config: PipelineConfig) -> None:
        super().check(con, config)
        present = batch_types(con)
        for column in (config.scd_valid_from, config.scd_valid_to):
            if column in present:
                raise WriteError(f"scd2: {column!r} is a column of the result; it is the validity "
                                 "column (rename it or set scd_valid_from/scd_valid_to)")
        counts = ", ".join(f"count(*) FILTER (WHERE {quote_ident(k)} IS NULL)"
                           for k in config.unique_key)
        nulls = con.execute(f"SELECT {counts} FROM {BATCH}").fetchone() or ()
        for column, n in zip(config.unique_key, nulls, strict=True):
            if n:
                raise WriteError(f"scd2: unique_key column {column!r} has {n} NULL values")

    def table_schema(self, schema: pa.Schema, config: PipelineConfig) -> pa.Schema:
        import pyarrow as pa

        stamp = pa.timestamp("us", tz="UTC")
        return schema.append(pa.field(config.scd_valid_from, stamp)).append(
            pa.field(config.scd_valid_to, stamp))

    def empty_warnings(self, config: PipelineConfig) -> list[str]:
        if config.scd_hard_deletes == "invalidate":
            # §5.6: invalidating every open key on an empty batch is "skipped with a warning".
            return ["scd2: the result is empty, so invalidating absent keys was skipped "
                    "(no open row was closed)"]
        return []

    def plan(self, ctx: WriteContext) -> WritePlan:
        cfg = ctx.config
        ctx.batch.dedup(cfg.unique_key)
        now = f"CAST({sql_str(ctx.run_started_at)} AS TIMESTAMPTZ)"
        files = self._open_candidates(ctx)
        closing = self._collect_closing(ctx, files, now)
        touched = [f for f in files if f.file_path in closing]
        sql = self._new_versions(ctx, files, now)
        if touched:
            sql = f"{self._rewrite(ctx, [f.file_path for f in touched], now)} UNION ALL {sql}"
        added, total = ctx.write(sql)
        kept = sum(f.record_count for f in touched)
        closed = sum(closing.values())
        return WritePlan(removed_files=[f.file_path for f in touched], added_files=added,
                         rows_written=total - kept, files_rewritten=len(touched),
                         counters={"rows_closed": closed})

    @staticmethod
    def _open_candidates(ctx: WriteContext) -> list[DataFile]:
        """Files that may hold an open row this run can close or must compare against."""
        vt_id = ctx.table.schema().find_field(ctx.config.scd_valid_to).field_id
        open_files = [f for f in ctx.base_files()
                      if (f.null_value_counts or {}).get(vt_id, 1) > 0]
        if ctx.config.scd_hard_deletes == "invalidate":
            return open_files
        return prune.candidates(ctx, open_files, ctx.config.unique_key, BATCH)

    @staticmethod
    def _collect_closing(ctx: WriteContext, files: list[DataFile], now: str) -> dict[str, int]:
        """Fill CLOSE with the open rows to close (changed, or absent with `invalidate`).

        Returns closing rows per file. Fails when `now` is not after such a row's valid_from.
        """
        if not files:
            return {}
        cfg = ctx.config
        keys = cfg.unique_key
        cols = ", ".join(f"t.{quote_ident(k)}" for k in keys)
        vf, vt = quote_ident(cfg.scd_valid_from), quote_ident(cfg.scd_valid_to)
        scan = ctx.scan([f.file_path for f in files], filename=True)
        if cfg.scd_hard_deletes == "invalidate":
            join, absent = "LEFT JOIN", f" OR r.{quote_ident(keys[0])} IS NULL"
        else:
            join, absent = "JOIN", ""
        ctx.con.execute(
            f"CREATE OR REPLACE TEMP TABLE {CLOSE} AS SELECT t.filename AS __file, "
            f"t.{vf} AS __vf, {cols} FROM {scan} t {join} {BATCH} r "
            f"ON {key_match('t', 'r', keys)} WHERE t.{vt} IS NULL AND ({_changed(ctx)}{absent})")
        row = ctx.con.execute(f"SELECT count(*) FROM {CLOSE} WHERE __vf >= {now}").fetchone()
        if row and row[0]:
            raise WriteError(f"scd2: clock went backwards: {row[0]} open rows have "
                             f"{cfg.scd_valid_from} at or after this run's start")
        return {str(p): int(n) for p, n in ctx.con.execute(
            f"SELECT __file, count(*) FROM {CLOSE} GROUP BY __file").fetchall()}

    @staticmethod
    def _rewrite(ctx: WriteContext, paths: list[str], now: str) -> str:
        """Touched files with their closing rows closed at `now` (T's column order)."""
        keys = ctx.config.unique_key
        vt = ctx.config.scd_valid_to
        closing = f"c.__file IS NOT NULL AND t.{quote_ident(vt)} IS NULL"
        cols = [f"CASE WHEN {closing} THEN {now} ELSE t.{quote_ident(c)} END AS {quote_ident(c)}"
                if c == vt else f"t.{quote_ident(c)}" for c in ctx.target_columns()]
        # CLOSE is distinct per (file, key), so the join never duplicates a row of T.
        return (f"SELECT {', '.join(cols)} FROM {ctx.scan(paths, filename=True)} t "
                f"LEFT JOIN (SELECT DISTINCT * EXCLUDE (__vf) FROM {CLOSE}) c "
                f"ON t.filename = c.__file AND {key_match('t', 'c', keys)}")

    @staticmethod
    def _new_versions(ctx: WriteContext, files: list[DataFile], now: str) -> str:
        """Rows of R with no open row in T, or whose open row is being closed."""
        cfg = ctx.config
        keys = cfg.unique_key
        extra = {cfg.scd_valid_from: now, cfg.scd_valid_to: "NULL"}
        select = f"SELECT {ctx.projection('b', extra)} FROM {BATCH} b"
        if not files:
            return select
        vt = quote_ident(cfg.scd_valid_to)
        open_keys = ", ".join(f"t.{quote_ident(k)}" for k in keys)
        still_open = (f"SELECT {open_keys} FROM {ctx.scan([f.file_path for f in files])} t "
                      f"WHERE t.{vt} IS NULL EXCEPT ALL SELECT {open_keys} FROM {CLOSE} t")
        return f"{select} ANTI JOIN ({still_open}) o ON {key_match('b', 'o', keys)}"


def _changed(ctx: WriteContext) -> str:
    """Open row `t` differs from batch row `r` in any non-key result column (null-safe)."""
    cfg = ctx.config
    compared = [c for c in ctx.batch_types() if c not in cfg.unique_key]
    if not compared:
        return "false"
    return " OR ".join(f"t.{quote_ident(c)} IS DISTINCT FROM r.{quote_ident(c)}" for c in compared)


STRATEGIES.update({s.name: s for s in (Incremental, DeleteInsert, Scd2, Snapshot)})
