"""Write-audit-publish cycles straight through `IcebergTables`, as a run and the dispatcher do.

Each cycle: prepare_stage (branch at main), write one parquet file with the table's field ids,
commit_stage (one snapshot on the branch), publish (fast-forward main). Used from threads.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from rat.app import sqlalchemy_url
from rat.core.specs import CommitRequest, StageRequest, StageState, StorageSpec
from rat.engine.catalog import CatalogSpec, IcebergTables


def local_tables(dsn: str, root: Path) -> IcebergTables:
    storage = StorageSpec(kind="local", root=str(root))
    return IcebergTables(CatalogSpec(type="sql", uri=sqlalchemy_url(dsn), name="rat",
                                     warehouse=str(root / "_warehouse"), storage=storage))


def arrow_schema() -> Any:
    import pyarrow as pa

    return pa.schema([pa.field("p", pa.int64()), pa.field("w", pa.int64()),
                      pa.field("n", pa.int64())])


def stage(tables: IcebergTables, ident: str, run_id: str,
          partition_by: list[dict[str, str]] | None = None) -> StageState:
    return tables.prepare_stage(StageRequest(
        ident=ident, run_id=run_id, arrow_schema=arrow_schema().serialize().to_pybytes(),
        partition_by=partition_by or [], replace_schema=False, table_properties={}))


def write_file(tables: IcebergTables, ident: str, rows: list[tuple[int, int, int]]) -> str:
    """A parquet data file under the table's location carrying the table's field ids."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = tables.load(ident)
    assert table is not None
    schema = pa.schema([
        pa.field(f.name, pa.int64(), metadata={b"PARQUET:field_id": str(f.field_id).encode()})
        for f in table.schema().fields])
    columns = list(zip(*rows, strict=True)) if rows else [[], [], []]
    data = pa.table([pa.array(c, pa.int64()) for c in columns], schema=schema)
    path = Path(table.location()) / "data" / f"{uuid.uuid4().hex}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(data, path)
    return str(path)


def commit(tables: IcebergTables, staged: StageState, run_id: str, added: list[str],
           removed: list[str] | None = None) -> StageState:
    return tables.commit_stage(CommitRequest(
        ident=staged.ident, branch=staged.branch, removed_files=removed or [],
        added_files=added, properties={"rat.run_id": run_id, "rat.operation": "write"}))


def main_history(tables: IcebergTables, ident: str) -> list[Any]:
    """main's snapshots, newest first (the whole ancestry)."""
    table = tables.load(ident)
    assert table is not None
    out = []
    snap = table.current_snapshot()
    while snap is not None:
        out.append(snap)
        snap = table.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id \
            else None
    return out


def rows(tables: IcebergTables, ident: str) -> list[tuple[int, int, int]]:
    table = tables.load(ident)
    assert table is not None
    data = table.scan().to_arrow()
    return sorted(zip(*(data.column(n).to_pylist() for n in ("p", "w", "n")), strict=True))
