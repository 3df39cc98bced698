"""Pipeline use cases: list, create (with starter files), read, update, soft delete, draft files."""

from __future__ import annotations

import builtins
import hashlib
import uuid
from typing import Any

import asyncpg

from rat.core.errors import AlreadyExists, Invalid, NotFound
from rat.core.events import EventBus
from rat.core.ids import IDENTIFIER, slug
from rat.core.ids import layer as check_layer
from rat.db.database import Conn, Database
from rat.db.queries import load_queries
from rat.engine.config import STRATEGY_KEYS
from rat.pipelines.models import (
    Created,
    Pipeline,
    PipelineCreate,
    PipelinePage,
    PipelineUpdate,
    entry_filename,
    from_row,
    pipeline_prefix,
    starter_config,
    starter_source,
)
from rat.plugins.protocols import ReadScope, VisibleArgs
from rat.storage.base import Storage

Q = load_queries("rat.pipelines")
SORTS = ("name", "namespace", "layer", "created_at", "updated_at", "published_at")
PIPELINE_TYPES = ("sql", "python")
MAX_DESCRIPTION = 5000
MAX_SOURCE_BYTES = 1024 * 1024


def content_id(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def blob_key(cid: str) -> str:
    """Storage key of a content-addressed blob (`sha256:<hex>`)."""
    digest = cid.removeprefix("sha256:")
    return f"_rat/blobs/sha256/{digest[:2]}/{digest}"


def check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= 200:
        raise Invalid("limit must be between 1 and 200")
    if offset < 0:
        raise Invalid("offset must be >= 0")


def check_sort(sort: str, allowed: tuple[str, ...]) -> str:
    if sort.lstrip("-") not in allowed:
        raise Invalid(f"sort must be one of {', '.join(allowed)} (prefix '-' for descending)")
    return sort


def _check_create(body: PipelineCreate) -> None:
    slug(body.namespace, "namespace")
    check_layer(body.layer)
    slug(body.name, "name")
    if body.type not in PIPELINE_TYPES:
        raise Invalid("type must be sql or python")
    if len(body.description) > MAX_DESCRIPTION:
        raise Invalid("description must be at most 5000 characters")
    if body.merge_strategy is not None and body.merge_strategy not in STRATEGY_KEYS:
        raise Invalid(f"merge_strategy must be one of {', '.join(STRATEGY_KEYS)}")
    for key in (body.unique_key or "").split(","):
        if key.strip() and not IDENTIFIER.match(key.strip()):
            raise Invalid(f"unique_key: {key.strip()!r} is not an identifier")
    if body.source is not None and len(body.source.encode()) > MAX_SOURCE_BYTES:
        raise Invalid("source must be at most 1 MiB")


class PipelinesService:
    def __init__(self, db: Database, storage: Storage, events: EventBus) -> None:
        self.db = db
        self.storage = storage
        self.events = events

    async def list(self, *, namespace: str | None = None, layer: str | None = None,
                   search: str | None = None, sort: str = "-created_at", limit: int = 50,
                   offset: int = 0, scope: ReadScope | None = None) -> PipelinePage:
        """A page of live pipelines; `scope` (from the authorizer) hides unreadable ones."""
        check_page(limit, offset)
        check_sort(sort, SORTS)
        if layer is not None:
            check_layer(layer)
        visible = ReadScope.pipeline_args(scope)
        rows = await self.db.many(Q["list_pipelines"], namespace, layer, search or None, limit,
                                  sort, offset, *visible)
        total = int(rows[0]["total"]) if rows else await self._count(namespace, layer, search,
                                                                     visible)
        return PipelinePage(pipelines=[from_row(r) for r in rows], total=total)

    async def _count(self, namespace: str | None, layer: str | None, search: str | None,
                     visible: VisibleArgs) -> int:
        rows = await self.db.many(Q["list_pipelines"], namespace, layer, search or None, 1,
                                  "-created_at", 0, *visible)
        return int(rows[0]["total"]) if rows else 0

    async def require_namespace(self, namespace: str) -> None:
        if not await self.db.val(Q["namespace_exists"], namespace):
            raise NotFound(f"namespace {namespace!r} not found")

    async def create(self, body: PipelineCreate, *, owner: str | None = None) -> Created:
        """Insert the pipeline and write its starter files in one step (nothing half-created)."""
        _check_create(body)
        await self.require_namespace(body.namespace)
        prefix = pipeline_prefix(body.namespace, body.layer, body.name)
        entry = entry_filename(body.type)
        source = body.source if body.source is not None else \
            starter_source(check_layer(body.layer), body.name, body.type)
        files = {entry: source,
                 "config.yaml": starter_config(body.description, body.merge_strategy,
                                               body.unique_key)}
        async with self.db.transaction() as conn:
            try:
                await self.db.val(Q["insert_pipeline"], uuid.uuid4(), body.namespace, body.layer,
                                  body.name, body.type, body.description, owner, conn=conn)
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(
                    f"pipeline {body.namespace}.{body.layer}.{body.name} already exists") from None
            await self.storage.delete_prefix(prefix)
            for rel, text in files.items():
                await self.storage.write(prefix + rel, text.encode())
        await self.events.emit("pipeline_created", namespace=body.namespace, layer=body.layer,
                               name=body.name)
        return Created(namespace=body.namespace, layer=body.layer, name=body.name,
                       s3_path=prefix, files_created=[prefix + rel for rel in files])

    async def get(self, namespace: str, layer: str, name: str) -> Pipeline:
        slug(namespace, "namespace")
        check_layer(layer)
        slug(name, "name")
        row = await self.db.one(Q["get_pipeline"], namespace, layer, name)
        if row is None:
            raise NotFound(f"pipeline {namespace}.{layer}.{name} not found")
        return from_row(row)

    async def get_by_id(self, pipeline_id: uuid.UUID, *, conn: Conn | None = None) -> Pipeline:
        row = await self.db.one(Q["get_pipeline_by_id"], pipeline_id, conn=conn)
        if row is None:
            raise NotFound("pipeline not found")
        return from_row(row)

    async def update(self, namespace: str, layer: str, name: str,
                     body: PipelineUpdate) -> Pipeline:
        pipeline = await self.get(namespace, layer, name)
        if body.description is not None and len(body.description) > MAX_DESCRIPTION:
            raise Invalid("description must be at most 5000 characters")
        if body.type is not None:
            await self._check_type_change(pipeline, body.type)
        await self.db.val(Q["update_pipeline"], pipeline.id, body.description, body.type,
                          body.owner)
        await self.events.emit("pipeline_updated", namespace=namespace, layer=layer, name=name)
        return await self.get(namespace, layer, name)

    async def _check_type_change(self, pipeline: Pipeline, new_type: str) -> None:
        if new_type not in PIPELINE_TYPES:
            raise Invalid("type must be sql or python")
        files = await self.draft_files(pipeline)
        entries = [f for f in files if f in ("pipeline.sql", "pipeline.py")]
        if entries and entry_filename(new_type) not in entries:
            raise Invalid(f"type {new_type!r} does not match the entry file {entries[0]}")

    async def delete(self, namespace: str, layer: str, name: str, *,
                     drop_table: bool = False) -> Pipeline:
        """Soft delete: cancel active runs, stop schedules and triggers, move draft files aside."""
        pipeline = await self.get(namespace, layer, name)
        async with self.db.transaction() as conn:
            await self.db.execrows(Q["soft_delete_pipeline"], pipeline.id, drop_table, conn=conn)
            await self.db.exec(Q["disable_pipeline_schedules"], pipeline.id, conn=conn)
            await self.db.exec(Q["disable_pipeline_triggers"], pipeline.id, conn=conn)
        await self._trash_files(pipeline)
        await self.events.emit("pipeline_deleted", pipeline_id=str(pipeline.id),
                               namespace=namespace, layer=layer, name=name)
        return pipeline

    async def _trash_files(self, pipeline: Pipeline) -> None:
        """The name can be reused at once, so the draft moves out of the pipeline folder."""
        for obj in await self.storage.list(pipeline.prefix):
            rel = obj.key[len(pipeline.prefix):]
            await self.storage.move(obj.key, f"_rat/trash/{pipeline.id}/{rel}")

    async def draft_bytes(self, pipeline: Pipeline) -> dict[str, bytes]:
        """Draft files as {path relative to the pipeline folder: content}."""
        out: dict[str, bytes] = {}
        for obj in await self.storage.list(pipeline.prefix):
            out[obj.key[len(pipeline.prefix):]] = await self.storage.read(obj.key)
        return out

    async def draft_files(self, pipeline: Pipeline) -> dict[str, str]:
        """Draft files as {path relative to the pipeline folder: text}."""
        return {rel: data.decode("utf-8", errors="replace")
                for rel, data in (await self.draft_bytes(pipeline)).items()}

    async def draft_hashes(self, pipeline: Pipeline) -> dict[str, str]:
        return {rel: content_id(data) for rel, data in (await self.draft_bytes(pipeline)).items()}

    async def refresh_dirty(self, pipeline: Pipeline) -> bool:
        dirty = await self.draft_hashes(pipeline) != pipeline.published_versions
        await self.db.exec(Q["set_draft_dirty"], pipeline.id, dirty)
        return dirty

    async def run_files(self, pipeline: Pipeline, version_number: int | None) -> dict[str, str]:
        """Files a run executes: the version's content-addressed blobs, or the draft if unpublished."""
        if version_number is None:
            return await self.draft_files(pipeline)
        row = await self.db.one(Q["get_version"], pipeline.id, version_number)
        if row is None:
            raise NotFound(f"version {version_number} of {pipeline.ident} not found")
        out: dict[str, str] = {}
        for rel, cid in row["published_versions"].items():
            out[rel] = (await self.storage.read(blob_key(cid))).decode("utf-8", errors="replace")
        return out

    async def record_data_snapshot(self, pipeline_id: uuid.UUID, version_number: int,
                                   snapshot_id: int, conn: Conn | None = None) -> None:
        """Remember the snapshot a successful run of the version published (rollback target)."""
        await self.db.exec(Q["set_version_snapshot"], pipeline_id, version_number, snapshot_id,
                           conn=conn)

    async def live_keys(self, namespace: str | None = None) -> builtins.list[dict[str, Any]]:
        return await self.db.many(Q["live_pipeline_keys"], namespace)

