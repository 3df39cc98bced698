"""Server-side preview of one landing file: a throwaway DuckDB that may read only that file.

Synchronous (DuckDB); the host calls `preview` from a worker thread, never on the event loop.
"""

from __future__ import annotations

from rat.core.specs import StorageSpec
from rat.engine import duck
from rat.engine.query import QueryError, QueryOutput, run_select

# Suffix → (format reported to the client, DuckDB reader). `.gz` is stripped first.
READERS = {
    ".csv": ("csv", "read_csv"), ".tsv": ("csv", "read_csv"), ".txt": ("csv", "read_csv"),
    ".json": ("json", "read_json_auto"), ".ndjson": ("json", "read_json_auto"),
    ".jsonl": ("json", "read_json_auto"), ".parquet": ("parquet", "read_parquet"),
}
MEMORY_LIMIT = "256MB"


def preview_format(filename: str) -> str | None:
    """`csv`, `json` or `parquet` by extension (`.gz` allowed for text formats), else None."""
    reader = _reader(filename)
    return reader[0] if reader else None


def _reader(filename: str) -> tuple[str, str] | None:
    name = filename.lower()
    if name.endswith(".gz"):
        name = name[:-3]
        if name.endswith(".parquet"):
            return None
    dot = name.rfind(".")
    return READERS.get(name[dot:]) if dot >= 0 else None


def preview(uri: str, filename: str, limit: int, storage: StorageSpec) -> QueryOutput:
    """First `limit` rows of the file at `uri`; QueryError with DuckDB's message on bad content."""
    reader = _reader(filename)
    if reader is None:
        raise QueryError(f"cannot preview {filename}: unsupported format")
    con = duck.connect(memory_limit=MEMORY_LIMIT, threads=1, storage=storage)
    try:
        con.execute(f"SET allowed_paths = [{duck.sql_str(uri)}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return run_select(con, f"SELECT * FROM {reader[1]}({duck.sql_str(uri)})", limit)
    finally:
        con.close()
