"""Iceberg table maintenance for the reaper: run branches, snapshot expiry, referenced files.

Blocking (pyiceberg): the reaper calls every function here from a worker thread. Nothing here
deletes data files; it only reports what is referenced, so the caller decides what is an orphan.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from rat.engine.catalog import IcebergTables, branch_name

if TYPE_CHECKING:
    from pyiceberg.table import Table

RUN_BRANCH_PREFIX = branch_name("")


class TableInfo(msgspec.Struct, frozen=True, kw_only=True):
    ident: str
    location: str
    pipeline_id: str | None


class BranchInfo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    head_timestamp_ms: int


def list_tables(tables: IcebergTables) -> list[TableInfo]:
    """Every table under a `(namespace, layer)` Iceberg namespace."""
    catalog = tables.catalog
    out = []
    for root in catalog.list_namespaces():
        for child in catalog.list_namespaces(root):
            for ident in catalog.list_tables(child):
                table = tables.load(".".join(ident))
                if table is not None:
                    out.append(TableInfo(ident=".".join(ident), location=table.location(),
                                         pipeline_id=table.properties.get("rat.pipeline_id")))
    return sorted(out, key=lambda t: t.ident)


def run_branches(tables: IcebergTables, ident: str) -> list[BranchInfo]:
    """The table's `rat_run_*` branches with the time of their head snapshot."""
    table = tables.load(ident)
    if table is None:
        return []
    out = []
    for name, ref in table.metadata.refs.items():
        snap = table.snapshot_by_id(ref.snapshot_id)
        if name.startswith(RUN_BRANCH_PREFIX) and snap is not None:
            out.append(BranchInfo(name=name, head_timestamp_ms=snap.timestamp_ms))
    return out


def remove_branches(tables: IcebergTables, ident: str, names: list[str]) -> int:
    """Drop the named branches (one commit); the table's schema and main are left alone."""
    return tables.remove_refs(ident, names, branches=True)


def expire_snapshots(tables: IcebergTables, ident: str, older_than_ms: int) -> int:
    """Expire snapshots older than the cutoff; branch and tag heads (main, `rat_v*`) are kept."""
    table = tables.load(ident)
    if table is None:
        return 0
    protected = {ref.snapshot_id for ref in table.metadata.refs.values()}
    doomed = [s.snapshot_id for s in table.metadata.snapshots
              if s.timestamp_ms < older_than_ms and s.snapshot_id not in protected]
    if doomed:
        table.maintenance.expire_snapshots().by_ids(doomed).commit()
    return len(doomed)


def referenced_files(tables: IcebergTables, ident: str) -> set[str] | None:
    """Every file the table's metadata references, as normalised paths; None if the table is gone.

    Metadata files (current and logged), statistics, and per snapshot its manifest list, manifests
    and data files (deleted entries too: an older snapshot may still need them).
    """
    table = tables.load(ident)
    return None if table is None else table_files(table)


def table_files(table: Table) -> set[str]:
    """Every file a loaded table's metadata references, as normalised paths (see above)."""
    meta = table.metadata
    paths = {table.metadata_location, *(e.metadata_file for e in meta.metadata_log)}
    paths.update(s.statistics_path for s in [*meta.statistics, *meta.partition_statistics])
    for snapshot in meta.snapshots:
        paths.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(table.io):
            paths.add(manifest.manifest_path)
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                paths.add(entry.data_file.file_path)
    return {normalize(p) for p in paths}


def normalize(path: str) -> str:
    """One spelling per file: `file:///x` and `file:/x` are both `/x`."""
    if path.startswith("file://"):
        return path[len("file://"):]
    if path.startswith("file:"):
        return path[len("file:"):]
    return path
