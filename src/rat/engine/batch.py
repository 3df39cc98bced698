"""The batch R of a run: stored once, then read by the write strategy (and quality) in passes.

R goes to lz4 parquet files in the run's scratch directory rather than a DuckDB temp table: a
temp table lives in memory (about 200 MB per million TPC-H lineitem rows, and DuckDB may hold up
to its 2 GB limit), while the files cost about the same time to write and keep the worker's memory
flat. Without a scratch directory R falls back to a temp table.

BATCH is always a view of R in its original column types; BATCH_POS adds POS, R's row position,
which "last row wins" deduplication orders by.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from rat.engine.duck import quote_ident, sql_str

if TYPE_CHECKING:
    import duckdb

BATCH = "__rat_batch"
BATCH_POS = "__rat_batch_pos"
POS = "__rat_pos"
_TABLE = "__rat_batch_data"
_DIR_PREFIX = "batch-"
_SPILL_FILE_BYTES = 128 * 1024 * 1024


def describe(con: duckdb.DuckDBPyConnection, relation: str) -> dict[str, str]:
    """Column name -> DuckDB type of a relation or parenthesised query, in order."""
    rows = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    return {str(r[0]): str(r[1]) for r in rows}


def batch_types(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    return describe(con, BATCH)


class Batch:
    """Where R lives for one run attempt."""

    def __init__(self, con: duckdb.DuckDBPyConnection, scratch_dir: str) -> None:
        self.con = con
        self.scratch_dir = scratch_dir.rstrip("/")
        self._holder: str | None = None  # temp table name or scratch directory

    def store(self, select_sql: str) -> int:
        """(Re)define BATCH as the rows of `select_sql` (which may read the current BATCH)."""
        types = describe(self.con, f"({select_sql})")
        previous = self._holder
        if self.scratch_dir:
            rows = self._spill(select_sql, types)
        else:
            rows = self._table(select_sql, types)
        self._drop(previous)
        return rows

    def stream(self, select_sql: str) -> None:
        """Define BATCH as `select_sql` itself, unstored, for a strategy that reads it once."""
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {BATCH} AS {select_sql}")

    def _spill(self, select_sql: str, types: dict[str, str]) -> int:
        target = f"{self.scratch_dir}/{_DIR_PREFIX}{uuid.uuid4().hex[:8]}"
        rows, paths = self.con.execute(
            f"COPY ({select_sql}) TO {sql_str(target)} (FORMAT parquet, COMPRESSION lz4_raw, "
            f"FILE_SIZE_BYTES {_SPILL_FILE_BYTES}, RETURN_FILES true)").fetchone() or (0, [])
        if not rows:
            shutil.rmtree(target, ignore_errors=True)
            return self._table(f"SELECT * FROM ({select_sql}) LIMIT 0", types)
        self._holder = target
        # DuckDB names rolled-over files data_0, data_1, ... in write order.
        ordered = sorted(paths, key=lambda p: int(Path(p).stem.rsplit("_", 1)[1]))
        files = "[" + ", ".join(sql_str(p) for p in ordered) + "]"
        self._define(f"read_parquet({files})", types,
                     f"file_index * 4294967296 + file_row_number AS {POS}")
        return int(rows)

    def _table(self, select_sql: str, types: dict[str, str]) -> int:
        table = f"{_TABLE}_{uuid.uuid4().hex[:8]}"
        self.con.execute(f"CREATE TEMP TABLE {table} AS {select_sql}")
        self._holder = table
        self._define(table, types, f"rowid AS {POS}")
        return self.rows()

    def _define(self, source: str, types: dict[str, str], position: str) -> None:
        """Point BATCH and BATCH_POS at `source`, casting back types parquet changed."""
        stored = describe(self.con, source)
        cols = ", ".join(
            quote_ident(n) if stored.get(n) == t else f"CAST({quote_ident(n)} AS {t}) AS "
            f"{quote_ident(n)}" for n, t in types.items())
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {BATCH} AS SELECT {cols} FROM {source}")
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {BATCH_POS} AS SELECT {cols}, {position} "
                         f"FROM {source}")

    def _drop(self, holder: str | None) -> None:
        if holder is None or holder == self._holder:
            return
        if holder.startswith(_TABLE):
            self.con.execute(f"DROP TABLE IF EXISTS {holder}")
        else:
            shutil.rmtree(holder, ignore_errors=True)

    def rows(self) -> int:
        row = self.con.execute(f"SELECT count(*) FROM {BATCH}").fetchone()
        return int(row[0]) if row else 0

    def dedup(self, keys: list[str]) -> int:
        """Keep the last row (by position in R) per key, null-safely; return the rows dropped."""
        cols = ", ".join(quote_ident(k) for k in keys)
        row = self.con.execute(f"SELECT count(*), (SELECT count(*) FROM (SELECT 1 FROM {BATCH} "
                               f"GROUP BY {cols})) FROM {BATCH}").fetchone()
        rows, groups = (int(row[0]), int(row[1])) if row else (0, 0)
        if rows == groups:
            return 0
        self.store(f"SELECT * EXCLUDE ({POS}) FROM {BATCH_POS} WHERE {POS} IN "
                   f"(SELECT max({POS}) FROM {BATCH_POS} GROUP BY {cols})")
        return rows - groups


def remove_batch_files(scratch_dir: str) -> None:
    """Delete a run's batch files (called when the attempt ends; DuckDB cleans its own spill)."""
    if not scratch_dir:
        return
    for path in Path(scratch_dir).glob(f"{_DIR_PREFIX}*"):
        shutil.rmtree(path, ignore_errors=True)
