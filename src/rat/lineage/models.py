"""Lineage graph shapes (LineageGraph in the API contract)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class LatestRun(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: uuid.UUID
    status: str
    started_at: datetime | None = None
    duration_ms: int | None = None


class QualitySummary(msgspec.Struct, kw_only=True):
    total: int
    passed: int
    failed: int
    warned: int


class TableStats(msgspec.Struct, kw_only=True):
    row_count: int
    size_bytes: int


class LandingInfo(msgspec.Struct, kw_only=True):
    file_count: int


class LineageNode(msgspec.Struct, kw_only=True, omit_defaults=True):
    id: str
    type: str
    namespace: str
    name: str
    layer: str | None = None
    latest_run: LatestRun | None = None
    quality: QualitySummary | None = None
    table_stats: TableStats | None = None
    landing_info: LandingInfo | None = None


class LineageEdge(msgspec.Struct, frozen=True, kw_only=True):
    source: str
    target: str
    type: str


class LineageGraph(msgspec.Struct, kw_only=True):
    nodes: list[LineageNode]
    edges: list[LineageEdge]
