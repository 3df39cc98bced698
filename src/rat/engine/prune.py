"""Candidate-file pruning for merges: which data files of T can hold given keys or partitions.

Manifest statistics (lower/upper bounds and null counts per column) narrow the files to read;
reading only the key columns of those candidates then finds the files that really hold affected
rows. Everything set-shaped runs in DuckDB (a range join of keys against file bounds), never as one
giant OR filter of key equalities.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rat.engine.duck import quote_ident
from rat.engine.write import WriteContext, key_match

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.manifest import DataFile

FILES = "__rat_files"
_PRUNABLE = ("boolean", "int", "long", "float", "double", "date", "time", "timestamp",
             "timestamptz", "string")


def _arrow_values(field_type: Any, values: list[Any]) -> pa.Array:
    """Iceberg single values (bounds or partition values) as an Arrow array of the column type."""
    import pyarrow as pa
    from pyiceberg.io.pyarrow import schema_to_pyarrow

    arrow_type = schema_to_pyarrow(field_type)
    if pa.types.is_large_string(arrow_type):
        arrow_type = pa.string()
    return pa.array(values, type=arrow_type)


def _prunable(field_type: Any) -> bool:
    text = str(field_type)
    return text in _PRUNABLE or text.startswith("decimal")


def _bounds(files: list[DataFile], field: Any) -> dict[str, list[Any]]:
    """Decoded lower/upper bounds and null counts of one column, None where unknown."""
    from pyiceberg.conversions import from_bytes

    prunable = _prunable(field.field_type)
    out: dict[str, list[Any]] = {"lo": [], "hi": [], "nulls": []}
    for f in files:
        for side, bounds in (("lo", f.lower_bounds), ("hi", f.upper_bounds)):
            raw = (bounds or {}).get(field.field_id) if prunable else None
            out[side].append(None if raw is None else from_bytes(field.field_type, raw))
        out["nulls"].append((f.null_value_counts or {}).get(field.field_id))
    return out


def register_stats(ctx: WriteContext, files: list[DataFile], columns: list[str]) -> None:
    """Expose per-file bounds of `columns` to DuckDB as FILES(path, lo_i, hi_i, nulls_i)."""
    import pyarrow as pa

    schema = ctx.table.schema()
    data: dict[str, Any] = {"path": pa.array([f.file_path for f in files], pa.string())}
    for i, column in enumerate(columns):
        field = schema.find_field(column)
        stats = _bounds(files, field)
        data[f"lo_{i}"] = _arrow_values(field.field_type, stats["lo"])
        data[f"hi_{i}"] = _arrow_values(field.field_type, stats["hi"])
        data[f"nulls_{i}"] = pa.array(stats["nulls"], pa.int64())
    ctx.con.register(FILES, pa.table(data))


def _key_in_file(i: int, column: str) -> str:
    """The batch key `k` may occur in file `f` for column i (unknown statistics: it may)."""
    col = f"k.{quote_ident(column)}"
    return (f"(({col} IS NULL AND coalesce(f.nulls_{i}, 1) > 0) OR ({col} IS NOT NULL AND "
            f"(f.lo_{i} IS NULL OR {col} >= f.lo_{i}) AND "
            f"(f.hi_{i} IS NULL OR {col} <= f.hi_{i})))")


def candidates(ctx: WriteContext, files: list[DataFile], keys: list[str],
               source: str) -> list[DataFile]:
    """Files whose statistics admit at least one key of relation `source` (null-safe).

    The first key column drives a range join (fast on many keys); the other columns filter.
    """
    if not files or not _prunable(ctx.table.schema().find_field(keys[0]).field_type):
        return files
    register_stats(ctx, files, keys)
    first = quote_ident(keys[0])
    distinct = ", ".join(quote_ident(k) for k in keys)
    rest = " AND ".join(_key_in_file(i, k) for i, k in enumerate(keys) if i) or "true"
    sql = f"""
        WITH k AS (SELECT DISTINCT {distinct} FROM {source})
        SELECT f.path FROM {FILES} f JOIN k ON k.{first} >= f.lo_0 AND k.{first} <= f.hi_0
        WHERE {rest}
        UNION
        SELECT f.path FROM (FROM {FILES} WHERE lo_0 IS NULL OR hi_0 IS NULL) f, k
        WHERE {_key_in_file(0, keys[0])} AND {rest}
        UNION
        SELECT f.path FROM {FILES} f, (FROM k WHERE {first} IS NULL) k
        WHERE coalesce(f.nulls_0, 1) > 0 AND {rest}"""
    try:
        hits = {str(r[0]) for r in ctx.con.execute(sql).fetchall()}
    finally:
        ctx.con.unregister(FILES)
    return [f for f in files if f.file_path in hits]


def matching(ctx: WriteContext, files: list[DataFile], keys: list[str],
             source: str) -> dict[str, int]:
    """Rows of each file whose key (null-safe) occurs in `source`; files without any are absent.

    Reads only the key columns of the given files.
    """
    if not files:
        return {}
    scan = ctx.scan([f.file_path for f in files], filename=True)
    rows = ctx.con.execute(
        f"SELECT t.filename, count(*) FROM {scan} t SEMI JOIN {source} k "
        f"ON {key_match('t', 'k', keys)} GROUP BY t.filename").fetchall()
    return {str(path): int(n) for path, n in rows}


def partition_files(ctx: WriteContext, files: list[DataFile], column: str,
                    source: str) -> list[DataFile] | None:
    """Files whose identity partition on `column` holds a value (null-safe) found in `source`.

    None when T is not identity-partitioned on `column` (then rows must be read).
    """
    import pyarrow as pa

    schema = ctx.table.schema()
    field = schema.find_field(column)
    spec = ctx.table.spec()
    positions = [i for i, pf in enumerate(spec.fields) if pf.source_id == field.field_id
                 and str(pf.transform) == "identity"]
    if not positions or any(f.spec_id != spec.spec_id for f in files):
        return None
    if not files:
        return []
    values = _arrow_values(field.field_type, [f.partition[positions[0]] for f in files])
    ctx.con.register(FILES, pa.table({"path": [f.file_path for f in files], "value": values}))
    try:
        hits = {str(r[0]) for r in ctx.con.execute(
            f"SELECT f.path FROM {FILES} f SEMI JOIN (SELECT DISTINCT {quote_ident(column)} AS v "
            f"FROM {source}) k ON f.value IS NOT DISTINCT FROM k.v").fetchall()}
    finally:
        ctx.con.unregister(FILES)
    return [f for f in files if f.file_path in hits]
