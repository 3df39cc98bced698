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
