"""Published tables from the catalog, cached in memory and refreshed when a table changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from rat.core.events import Event, EventBus
from rat.core.ids import layer as check_layer
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.engine.catalog import IcebergTables, TableSummary
from rat.pipelines.service import check_page
from rat.plugins.protocols import ReadScope
from rat.tables.models import Freshness, TableInfo, TablePage

Q = load_queries("rat.tables")


class TableRegistry:
    """Summaries of every table, loaded once and refreshed per table on `table_changed`."""

    def __init__(self, tables: IcebergTables, events: EventBus) -> None:
        self.tables = tables
        self._cache: dict[str, TableSummary] | None = None
        self._lock = asyncio.Lock()
        events.subscribe(self._on_change, ("table_changed",))

    async def all(self) -> dict[str, TableSummary]:
        async with self._lock:
            if self._cache is None:
                found = await asyncio.to_thread(self.tables.summaries)
                self._cache = {f"{t.namespace}.{t.layer}.{t.name}": t for t in found}
            return dict(self._cache)

    async def published(self, namespace: str | None = None) -> list[TableSummary]:
        return [t for t in (await self.all()).values()
                if t.published and (namespace is None or t.namespace == namespace)]

    async def refresh(self, ident: str) -> TableSummary | None:
        summary = await asyncio.to_thread(self.tables.summary, ident)
        async with self._lock:
            if self._cache is not None:
                if summary is None:
                    self._cache.pop(ident, None)
                else:
                    self._cache[ident] = summary
        return summary

    async def _on_change(self, event: Event) -> None:
        data = event.data
        await self.refresh(f"{data['namespace']}.{data['layer']}.{data['name']}")

    def invalidate(self) -> None:
        self._cache = None


def _updated(summary: TableSummary) -> datetime | None:
    if summary.last_updated_ms is None:
        return None
    return datetime.fromtimestamp(summary.last_updated_ms / 1000, UTC)


class TablesService:
    def __init__(self, db: Database, registry: TableRegistry) -> None:
        self.db = db
        self.registry = registry

    async def list(self, *, namespace: str | None = None, layer: str | None = None,
                   search: str | None = None, limit: int = 50, offset: int = 0,
                   scope: ReadScope | None = None) -> TablePage:
        check_page(limit, offset)
        if layer is not None:
            check_layer(layer)
        metadata = {(r["namespace"], r["layer"], r["name"]): r
                    for r in await self.db.many(Q["list_table_metadata"])}
        freshness = {(r["namespace"], r["layer"], r["name"]): r
                     for r in await self.db.many(Q["list_freshness"])}
        items = []
        for t in sorted(await self.registry.published(namespace),
                        key=lambda t: (t.namespace, t.layer, t.name)):
            key = (t.namespace, t.layer, t.name)
            description = (metadata.get(key) or {}).get("description") or ""
            if layer and t.layer != layer:
                continue
            if scope is not None and not scope.allows_table(t.namespace, t.layer, t.name):
                continue
            if search and search.lower() not in f"{t.name} {description}".lower():
                continue
            items.append(self._info(t, description, freshness.get(key)))
        return TablePage(tables=items[offset:offset + limit], total=len(items))

    @staticmethod
    def _info(t: TableSummary, description: str, fresh: dict[str, Any] | None) -> TableInfo:
        return TableInfo(
            namespace=t.namespace, layer=t.layer, name=t.name, row_count=t.row_count,
            size_bytes=t.size_bytes, last_updated_at=_updated(t), description=description,
            freshness=Freshness(status=fresh["status"], age_seconds=fresh["age_seconds"],
                                checked_at=fresh["checked_at"]) if fresh else None)

