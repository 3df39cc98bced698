"""Table shapes as the API returns them."""

from __future__ import annotations

from datetime import datetime

import msgspec


class Freshness(msgspec.Struct, kw_only=True):
    status: str
    age_seconds: float
    checked_at: datetime


class TableInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    namespace: str
    layer: str
    name: str
    row_count: int
    size_bytes: int
    last_updated_at: datetime | None
    freshness: Freshness | None
    description: str | None = None


class TablePage(msgspec.Struct, kw_only=True):
    tables: list[TableInfo]
    total: int


class Column(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    type: str
    description: str | None = None


class PartitionField(msgspec.Struct, kw_only=True):
    column: str
    transform: str


class PipelineRef(msgspec.Struct, kw_only=True):
    namespace: str
    layer: str
    name: str


class TableDetail(msgspec.Struct, kw_only=True):
    namespace: str
    layer: str
    name: str
    row_count: int
    size_bytes: int
    description: str
    last_updated_at: datetime | None
    freshness: Freshness | None
    columns: list[Column]
    owner: str | None
    column_descriptions: dict[str, str]
    snapshot_id: int | None
    partition_by: list[PartitionField]
    pipeline: PipelineRef | None


class TableMetadataUpdate(msgspec.Struct, kw_only=True):
    description: str | None = None
    owner: str | None = None
    column_descriptions: dict[str, str] | None = None


class Snapshot(msgspec.Struct, kw_only=True):
    """One snapshot in the table's main history, newest first; queryable with `as_of`."""

    snapshot_id: int
    parent_id: int | None
    committed_at: datetime
    operation: str
    rat_operation: str | None
    run_id: str | None
    pipeline_version: int | None
    added_records: int | None
    deleted_records: int | None
    total_records: int | None
    total_size_bytes: int | None
    current: bool


class SnapshotPage(msgspec.Struct, kw_only=True):
    snapshots: list[Snapshot]
    total: int


class SchemaTable(msgspec.Struct, kw_only=True):
    namespace: str
    layer: str
    name: str
    columns: list[Column]


class SchemaPage(msgspec.Struct, kw_only=True):
    tables: list[SchemaTable]
