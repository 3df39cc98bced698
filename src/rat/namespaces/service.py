"""Namespace use cases: list, read, describe; create and delete when the feature is enabled.

Deleting refuses a namespace that still holds pipelines, tables or landing zones unless forced.
A forced delete soft-deletes each live pipeline first (so runs are cancelled and schedules and
triggers stop, exactly as a pipeline delete does), drops the namespace's Iceberg tables, removes
its zones and every object stored under it, then deletes the rows. Each step is idempotent, so a
forced delete that failed half-way can simply be repeated.
"""

from __future__ import annotations

import asyncio
from typing import Any

from rat.core.errors import (
    AlreadyExists,
    FailedPrecondition,
    Forbidden,
    Invalid,
    NotFound,
    NotImplementedFeature,
)
from rat.core.events import EventBus
from rat.core.ids import DEFAULT_NAMESPACE, slug
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.engine.catalog import IcebergTables
from rat.namespaces.models import Namespace, NamespaceCreate, NamespacePage, NamespaceUpdate
from rat.pipelines.service import MAX_DESCRIPTION, PipelinesService, check_page
from rat.plugins.protocols import ReadScope
from rat.storage.base import Storage
from rat.tables.service import TableRegistry

Q = load_queries("rat.namespaces")
# Catalog names DuckDB reserves: a namespace is attached under its own name in the console.
RESERVED = frozenset({"memory", "system", "temp", "main"})
FEATURE_OFF = ("creating and deleting namespaces needs the rat-namespaces plugin, which is "
               "not enabled")


def _namespace(row: dict[str, Any]) -> Namespace:
    return Namespace(name=row["name"], description=row["description"],
                     created_by=row["created_by"], created_at=row["created_at"])


class NamespacesService:
    """`enabled`: the `namespaces` capability (the rat-namespaces plugin) is on."""

    def __init__(self, db: Database, storage: Storage, events: EventBus,
                 pipelines: PipelinesService, catalog: IcebergTables, registry: TableRegistry,
                 *, warehouse_key: str | None, enabled: bool = False) -> None:
        self.db = db
        self.storage = storage
        self.events = events
        self.pipelines = pipelines
        self.catalog = catalog
        self.registry = registry
        self.warehouse_key = warehouse_key
        self.enabled = enabled

    async def list(self, *, limit: int = 50, offset: int = 0,
                   scope: ReadScope | None = None) -> NamespacePage:
        check_page(limit, offset)
        only = list(scope.namespaces) if scope is not None else None
        rows = await self.db.many(Q["list_namespaces"], limit, offset, only)
        total = int(rows[0]["total"]) if rows else \
            int(await self.db.val(Q["count_namespaces"], only))
        return NamespacePage(namespaces=[_namespace(r) for r in rows], total=total)

    async def get(self, name: str) -> Namespace:
        row = await self.db.one(Q["get_namespace"], slug(name, "name"))
        if row is None:
            raise NotFound(f"namespace {name!r} not found")
        return _namespace(row)

    async def create(self, body: NamespaceCreate, *, created_by: str | None = None) -> Namespace:
        if not self.enabled:
            raise NotImplementedFeature(FEATURE_OFF)
        slug(body.name, "name")
        if body.name in RESERVED:
            raise Invalid(f"name: {body.name!r} is reserved")
        if len(body.description) > MAX_DESCRIPTION:
            raise Invalid("description must be at most 5000 characters")
        row = await self.db.one(Q["insert_namespace"], body.name, body.description, created_by)
        if row is None:
            raise AlreadyExists(f"namespace {body.name!r} already exists")
        await self.events.emit("namespace_created", namespace=body.name)
        return _namespace(row)

    async def update(self, name: str, body: NamespaceUpdate) -> None:
        if len(body.description) > MAX_DESCRIPTION:
            raise Invalid("description must be at most 5000 characters")
        if not await self.db.execrows(Q["update_namespace"], slug(name, "name"),
                                      body.description):
            raise NotFound(f"namespace {name!r} not found")

    async def delete(self, name: str, *, force: bool = False) -> None:
        if not self.enabled:
            raise NotImplementedFeature(FEATURE_OFF)
        await self.get(name)
        if name == DEFAULT_NAMESPACE:
            raise Forbidden("the default namespace cannot be deleted")
        pipelines = await self.pipelines.live_keys(name)
        tables = [t for t in (await self.registry.all()).values() if t.namespace == name]
        zones = int(await self.db.val(Q["count_zones"], name))
        if (pipelines or tables or zones) and not force:
            raise FailedPrecondition(
                f"namespace {name!r} is not empty ({len(pipelines)} pipelines, {len(tables)} "
                f"tables, {zones} landing zones): delete them first or pass force=true")
        for p in pipelines:
            await self.pipelines.delete(name, p["layer"], p["name"], drop_table=True)
        for t in tables:
            await asyncio.to_thread(self.catalog.drop, f"{name}.{t.layer}.{t.name}")
            await self.events.emit("table_changed", namespace=name, layer=t.layer, name=t.name)
        await self._remove_rows_and_objects(name)
        await self.events.emit("namespace_deleted", namespace=name)

    async def _remove_rows_and_objects(self, name: str) -> None:
        ids = [r["id"] for r in await self.db.many(Q["namespace_pipeline_ids"], name)]
        # Objects first: if this fails, the rows still say what to clean and a repeated forced
        # delete finishes the job; rows deleted first would leave files nobody knows about.
        prefixes = [f"{name}/", *(f"_rat/trash/{pid}/" for pid in ids)]
        if self.warehouse_key is not None:
            prefixes.append(f"{self.warehouse_key.rstrip('/')}/{name}/")
        for prefix in prefixes:
            await self.storage.delete_prefix(prefix)
        async with self.db.transaction() as conn:
            await self.db.exec(Q["delete_zone_triggers"], name, conn=conn)
            await self.db.exec(Q["delete_zones"], name, conn=conn)
            await self.db.exec(Q["delete_table_rows"], name, conn=conn)
            await self.db.exec(Q["delete_pipelines"], name, conn=conn)
            await self.db.execrows(Q["delete_namespace"], name, conn=conn)
