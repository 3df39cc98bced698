"""Published tables from the catalog, cached in memory and refreshed when a table changes.

Row counts and sizes come from Iceberg snapshot summaries (never a COUNT(*) scan); descriptions
and owners from `table_metadata`, falling back to the producing pipeline and its config.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rat.core.errors import Invalid, NotFound
from rat.core.events import Event, EventBus
from rat.core.ids import layer as check_layer
from rat.core.ids import slug, table_name
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.engine.catalog import IcebergTables, SnapshotInfo, TableGone, TableSummary
from rat.pipelines.service import MAX_DESCRIPTION, check_page
from rat.plugins.protocols import ReadScope
from rat.query.models import QueryRequest
from rat.tables.models import (
    Column,
    Freshness,
    PartitionField,
    PipelineRef,
    SchemaPage,
    SchemaTable,
    Snapshot,
    SnapshotPage,
    TableDetail,
    TableInfo,
    TableMetadataUpdate,
    TablePage,
)

if TYPE_CHECKING:
    from rat.query.service import QueryService

Q = load_queries("rat.tables")
PREVIEW_DEFAULT = 50
PREVIEW_MAX = 1000
HISTORY_MAX = 10_000


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

    async def get(self, namespace: str, layer: str, name: str) -> TableSummary:
        """A published table; 404 naming it otherwise."""
        slug(namespace, "namespace")
        check_layer(layer)
        slug(name, "name")
        ident = table_name(namespace, layer, name)
        summary = (await self.all()).get(ident)
        if summary is None or not summary.published:
            raise NotFound(f"table {ident} not found")
        return summary

    @staticmethod
    def resolve(name: str, namespace: str) -> str:
        """`layer.name` in `namespace`, or `ns.layer.name`, as a validated identifier."""
        parts = name.split(".")
        if len(parts) == 2:
            parts = [namespace, *parts]
        if len(parts) != 3:
            raise Invalid(f"table {name!r}: use layer.name or namespace.layer.name")
        slug(parts[0], "namespace")
        check_layer(parts[1])
        slug(parts[2], "name")
        return table_name(*parts)

    async def history(self, ident: str, limit: int = HISTORY_MAX) -> list[SnapshotInfo]:
        """Snapshots of main, newest first."""
        try:
            return await asyncio.to_thread(self.tables.history, ident, limit)
        except TableGone:
            raise NotFound(f"table {ident} not found") from None

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


def _freshness(row: dict[str, Any] | None) -> Freshness | None:
    if row is None:
        return None
    return Freshness(status=row["status"], age_seconds=row["age_seconds"],
                     checked_at=row["checked_at"])


def _readable(scope: ReadScope | None, t: TableSummary) -> bool:
    return scope is None or scope.allows_table(t.namespace, t.layer, t.name)


def config_descriptions(columns: Any) -> dict[str, str]:
    """Column descriptions from a published config's `columns` list (defaults for the explorer)."""
    if not isinstance(columns, list):
        return {}
    return {str(c["name"]): str(c["description"]) for c in columns
            if isinstance(c, dict) and c.get("name") and c.get("description")}


def _int(summary: dict[str, str], key: str) -> int | None:
    value = summary.get(key)
    return int(value) if value is not None and value.lstrip("-").isdigit() else None


def _snapshot(info: SnapshotInfo, current: int | None) -> Snapshot:
    summary = info.summary
    return Snapshot(
        snapshot_id=info.snapshot_id, parent_id=info.parent_id,
        committed_at=datetime.fromtimestamp(info.timestamp_ms / 1000, UTC),
        operation=info.operation, rat_operation=summary.get("rat.operation"),
        run_id=summary.get("rat.run_id"), pipeline_version=_int(summary, "rat.pipeline_version"),
        added_records=_int(summary, "added-records"),
        deleted_records=_int(summary, "deleted-records"),
        total_records=_int(summary, "total-records"),
        total_size_bytes=_int(summary, "total-files-size"),
        current=info.snapshot_id == current)


class TablesService:
    def __init__(self, db: Database, registry: TableRegistry,
                 query: QueryService | None = None) -> None:
        self.db = db
        self.registry = registry
        self.query = query

    async def list(self, *, namespace: str | None = None, layer: str | None = None,
                   search: str | None = None, limit: int = 50, offset: int = 0,
                   scope: ReadScope | None = None) -> TablePage:
        check_page(limit, offset)
        if layer is not None:
            check_layer(layer)
        described = await self._descriptions(namespace)
        freshness = {(r["namespace"], r["layer"], r["name"]): r
                     for r in await self.db.many(Q["list_freshness"])}
        items = []
        for t in sorted(await self.registry.published(namespace),
                        key=lambda t: (t.namespace, t.layer, t.name)):
            key = (t.namespace, t.layer, t.name)
            description = described.get(key, "")
            if (layer and t.layer != layer) or not _readable(scope, t):
                continue
            if search and search.lower() not in f"{t.name}\n{description}".lower():
                continue
            items.append(self._info(t, description, freshness.get(key)))
        return TablePage(tables=items[offset:offset + limit], total=len(items))

    async def _descriptions(self, namespace: str | None) -> dict[tuple[str, str, str], str]:
        """Table descriptions: an explicit one wins over the producing pipeline's."""
        out = {(r["namespace"], r["layer"], r["name"]): r["description"]
               for r in await self.db.many(Q["list_producers"], namespace) if r["description"]}
        for r in await self.db.many(Q["list_table_metadata"]):
            if r["description"]:
                out[(r["namespace"], r["layer"], r["name"])] = r["description"]
        return out

    @staticmethod
    def _info(t: TableSummary, description: str, fresh: dict[str, Any] | None) -> TableInfo:
        return TableInfo(
            namespace=t.namespace, layer=t.layer, name=t.name, row_count=t.row_count,
            size_bytes=t.size_bytes, last_updated_at=_updated(t), description=description,
            freshness=_freshness(fresh))

    async def detail(self, namespace: str, layer: str, name: str) -> TableDetail:
        t = await self.registry.get(namespace, layer, name)
        meta = await self.db.one(Q["get_table_metadata"], namespace, layer, name) or {}
        producer = await self.db.one(Q["get_producer"], namespace, layer, name)
        fresh = await self.db.one(Q["get_freshness"], namespace, layer, name)
        explicit: dict[str, str] = dict(meta.get("column_descriptions") or {})
        docs = {**config_descriptions(producer["columns"] if producer else None), **explicit}
        description = meta.get("description") or (producer["description"] if producer else "")
        return TableDetail(
            namespace=t.namespace, layer=t.layer, name=t.name, row_count=t.row_count,
            size_bytes=t.size_bytes, description=description or "",
            last_updated_at=_updated(t), freshness=_freshness(fresh),
            columns=[Column(name=c, type=ty, description=docs.get(c)) for c, ty in t.columns],
            owner=meta.get("owner") or (producer["owner"] if producer else None),
            column_descriptions=explicit, snapshot_id=t.snapshot_id,
            partition_by=[PartitionField(**p) for p in t.partition_by],
            pipeline=PipelineRef(namespace=producer["namespace"], layer=producer["layer"],
                                 name=producer["name"]) if producer else None)

    async def update_metadata(self, namespace: str, layer: str, name: str,
                              body: TableMetadataUpdate) -> TableDetail:
        t = await self.registry.get(namespace, layer, name)
        if body.description is not None and len(body.description) > MAX_DESCRIPTION:
            raise Invalid("description must be at most 5000 characters")
        if body.owner is not None and len(body.owner) > 256:
            raise Invalid("owner must be at most 256 characters")
        columns = {c for c, _t in t.columns}
        unknown = sorted(set(body.column_descriptions or {}) - columns)
        if unknown:
            raise Invalid(f"column_descriptions: unknown column(s) {', '.join(unknown)}")
        if any(len(v) > MAX_DESCRIPTION for v in (body.column_descriptions or {}).values()):
            raise Invalid("column_descriptions: each description must be at most 5000 characters")
        await self.db.exec(Q["upsert_table_metadata"], namespace, layer, name, body.description,
                           body.owner, body.column_descriptions)
        return await self.detail(namespace, layer, name)

    async def snapshots(self, namespace: str, layer: str, name: str, *, limit: int = 50,
                        offset: int = 0) -> SnapshotPage:
        check_page(limit, offset)
        t = await self.registry.get(namespace, layer, name)
        history = await self.registry.history(table_name(namespace, layer, name))
        return SnapshotPage(snapshots=[_snapshot(s, t.snapshot_id)
                                       for s in history[offset:offset + limit]],
                            total=len(history))

    async def preview(self, namespace: str, layer: str, name: str, *, limit: int | None = None,
                      snapshot_id: int | None = None) -> bytes:
        """The first rows as a QueryResult (JSON bytes), optionally at an older snapshot."""
        await self.registry.get(namespace, layer, name)
        limit = PREVIEW_DEFAULT if limit is None else limit
        if not 1 <= limit <= PREVIEW_MAX:
            raise Invalid(f"limit must be between 1 and {PREVIEW_MAX}")
        if self.query is None:
            raise RuntimeError("TablesService was built without a QueryService")
        ident = table_name(namespace, layer, name)
        quoted = ".".join(f'"{p}"' for p in (namespace, layer, name))
        as_of = {ident: snapshot_id} if snapshot_id is not None else None
        return await self.query.run(QueryRequest(sql=f"SELECT * FROM {quoted}",
                                                 namespace=namespace, limit=limit, as_of=as_of))

    async def schema(self, *, namespace: str | None = None, layer: str | None = None,
                     scope: ReadScope | None = None) -> SchemaPage:
        """Every published table with its columns (catalog metadata only), for autocomplete."""
        if layer is not None:
            check_layer(layer)
        docs: dict[tuple[str, str, str], dict[str, str]] = {
            (r["namespace"], r["layer"], r["name"]): config_descriptions(r["columns"])
            for r in await self.db.many(Q["list_producers"], namespace)}
        for r in await self.db.many(Q["list_table_metadata"]):
            key = (r["namespace"], r["layer"], r["name"])
            docs[key] = {**docs.get(key, {}), **(r["column_descriptions"] or {})}
        out = []
        for t in sorted(await self.registry.published(namespace),
                        key=lambda t: (t.namespace, t.layer, t.name)):
            if (layer and t.layer != layer) or not _readable(scope, t):
                continue
            described = docs.get((t.namespace, t.layer, t.name), {})
            out.append(SchemaTable(namespace=t.namespace, layer=t.layer, name=t.name, columns=[
                Column(name=c, type=ty, description=described.get(c)) for c, ty in t.columns]))
        return SchemaPage(tables=out)
