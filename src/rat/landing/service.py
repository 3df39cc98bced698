"""Landing zone use cases: zones, uploads, samples, processed files, preview, lifecycle.

Storage layout (product §3.1): uploads at `{ns}/landing/{zone}/{YYYYMMDD_HHMMSS}_{name}`, curated
samples in `_samples/`, archived inputs in `_processed/{run_id}/`. Only the top level is "unprocessed":
that is what `landing_zone()` reads and what the zone's counters report.
"""

from __future__ import annotations

import asyncio
import builtins
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import msgspec

from rat.core.errors import AlreadyExists, Invalid, NotFound, UnsupportedMedia
from rat.core.events import EventBus
from rat.core.ids import parse_uuid, slug
from rat.core.specs import StorageSpec
from rat.core.timefmt import utcnow
from rat.db.database import Conn, Database
from rat.db.queries import load_queries
from rat.engine import landing_preview
from rat.engine.query import QueryError
from rat.files.service import FileEntry
from rat.landing.models import (
    FilePage,
    FilePreview,
    LandingFile,
    LandingZone,
    Lifecycle,
    LifecycleUpdate,
    ProcessedEntry,
    ProcessedPage,
    SampleList,
    SampleUploaded,
    Upload,
    ZoneCreate,
    ZonePage,
    ZoneUpdate,
)
from rat.landing.naming import stored_name
from rat.pipelines.service import MAX_DESCRIPTION, PipelinesService, check_page
from rat.plugins.protocols import ReadScope
from rat.storage.base import Storage
from rat.storage.keys import validate_filename

Q = load_queries("rat.landing")
MAX_EXPECTED_SCHEMA = 65_536
MAX_CONTENT_TYPE = 255
MAX_NAME_ATTEMPTS = 1000
PREVIEW_DEFAULT, PREVIEW_MAX = 100, 1000
SAMPLES, PROCESSED = "_samples/", "_processed/"

# Called inside the transaction that records an upload, so a landed file fires its triggers
# exactly once: either the row and its firings commit together, or neither does.
FileHook = Callable[[Conn, LandingZone, LandingFile], Awaitable[None]]


def check_preview_limit(limit: int) -> int:
    if not 1 <= limit <= PREVIEW_MAX:
        raise Invalid(f"limit must be between 1 and {PREVIEW_MAX}")
    return limit


def _zone(row: dict[str, Any]) -> LandingZone:
    fields = {k: v for k, v in row.items() if k != "total"}
    return LandingZone(**fields)


def _file(row: dict[str, Any]) -> LandingFile:
    return LandingFile(**{k: v for k, v in row.items() if k != "total"})


class LandingService:
    def __init__(self, db: Database, storage: Storage, spec: StorageSpec,
                 pipelines: PipelinesService, events: EventBus) -> None:
        self.db = db
        self.storage = storage
        self.spec = spec
        self.pipelines = pipelines
        self.events = events
        self.on_file_added: builtins.list[FileHook] = []
        self._reserved: set[str] = set()

    # zones ---------------------------------------------------------------------------------

    async def list(self, *, namespace: str | None = None, search: str | None = None,
                   limit: int = 50, offset: int = 0, scope: ReadScope | None = None) -> ZonePage:
        """A page of zones; `scope` (from the authorizer) hides unreadable ones."""
        check_page(limit, offset)
        visible = (None, None) if scope is None else \
            (list(scope.namespaces), list(scope.zone_ids))
        rows = await self.db.many(Q["list_zones"], namespace, search or None, limit, offset,
                                  *visible)
        total = int(rows[0]["total"]) if rows else int(
            await self.db.val(Q["count_zones"], namespace, search or None, *visible))
        return ZonePage(zones=[_zone(r) for r in rows], total=total)

    async def get(self, namespace: str, name: str) -> LandingZone:
        slug(namespace, "namespace")
        slug(name, "name")
        row = await self.db.one(Q["get_zone"], namespace, name)
        if row is None:
            raise NotFound(f"landing zone {namespace}/{name} not found")
        return _zone(row)

    async def create(self, body: ZoneCreate, *, owner: str | None = None) -> LandingZone:
        slug(body.namespace, "namespace")
        slug(body.name, "name")
        _check_text(body.description, body.expected_schema)
        await self.pipelines.require_namespace(body.namespace)
        try:
            await self.db.val(Q["insert_zone"], uuid.uuid4(), body.namespace, body.name,
                              body.description, body.expected_schema, owner)
        except asyncpg.UniqueViolationError:
            raise AlreadyExists(f"landing zone {body.namespace}/{body.name} already exists") \
                from None
        return await self.get(body.namespace, body.name)

    async def update(self, namespace: str, name: str, body: ZoneUpdate) -> LandingZone:
        zone = await self.get(namespace, name)
        _check_text(body.description or "", body.expected_schema or "")
        await self.db.execrows(Q["update_zone"], zone.id, body.description, body.owner,
                               body.expected_schema)
        return await self.get(namespace, name)

    async def delete(self, namespace: str, name: str) -> None:
        """Remove every object under the zone, its rows, and the triggers watching it."""
        zone = await self.get(namespace, name)
        async with self.db.transaction() as conn:
            await self.db.execrows(Q["delete_zone_triggers"], namespace, name, conn=conn)
            await self.db.execrows(Q["delete_zone"], zone.id, conn=conn)
        await self.storage.delete_prefix(zone.prefix)

    async def lifecycle(self, namespace: str, name: str) -> Lifecycle:
        zone = await self.get(namespace, name)
        return Lifecycle(processed_max_age_days=zone.processed_max_age_days,
                         auto_purge=zone.auto_purge)

    async def set_lifecycle(self, namespace: str, name: str, body: LifecycleUpdate) -> None:
        zone = await self.get(namespace, name)
        days = _lifecycle_days(body, zone)
        purge = zone.auto_purge if isinstance(body.auto_purge, msgspec.UnsetType) else body.auto_purge
        await self.db.exec(Q["set_lifecycle"], zone.id, days, purge)

    # uploads -------------------------------------------------------------------------------

    async def add_file(self, zone: LandingZone, upload: Upload,
                       uploaded_by: str | None = None) -> LandingFile:
        """Store a spooled upload under its timestamped name, then record it and fire hooks."""
        key = await self._reserve_key(zone, upload.filename)
        try:
            await self.storage.adopt_file(key, upload.path)
            row = await self._record(zone, upload, key, uploaded_by)
        finally:
            self._reserved.discard(key)
        await self.events.emit("landing_file_added", namespace=zone.namespace, zone=zone.name,
                               file_id=str(row.id), path=key, filename=row.filename)
        return row

    async def _reserve_key(self, zone: LandingZone, filename: str) -> str:
        now = utcnow()
        for attempt in range(MAX_NAME_ATTEMPTS):
            key = zone.prefix + stored_name(filename, now, attempt)
            if key in self._reserved or await self.db.val(Q["path_taken"], key) \
                    or await self.storage.stat(key) is not None:
                continue
            self._reserved.add(key)
            return key
        raise AlreadyExists(f"too many uploads named {filename!r} this second")

    async def _record(self, zone: LandingZone, upload: Upload, key: str,
                      uploaded_by: str | None) -> LandingFile:
        content_type = (upload.content_type or "application/octet-stream")[:MAX_CONTENT_TYPE]
        try:
            async with self.db.transaction() as conn:
                row = _file(await self.db.one(
                    Q["insert_file"], uuid.uuid4(), zone.id, upload.filename, key, upload.size,
                    content_type, uploaded_by, conn=conn) or {})
                for hook in self.on_file_added:
                    await hook(conn, zone, row)
        except asyncpg.ForeignKeyViolationError:
            await self.storage.delete(key)
            raise NotFound(f"landing zone {zone.namespace}/{zone.name} not found") from None
        except BaseException:
            await asyncio.shield(self.storage.delete(key))
            raise
        return row

    # files ---------------------------------------------------------------------------------

    async def files(self, namespace: str, name: str, *, include_processed: bool = False,
                    limit: int = 50, offset: int = 0) -> FilePage:
        check_page(limit, offset)
        zone = await self.get(namespace, name)
        rows = await self.db.many(Q["list_files"], zone.id, include_processed, limit, offset)
        total = int(rows[0]["total"]) if rows else int(
            await self.db.val(Q["count_files"], zone.id, include_processed))
        return FilePage(files=[_file(r) for r in rows], total=total)

    async def file(self, namespace: str, name: str, file_id: str) -> LandingFile:
        fid = parse_uuid(file_id, "fileID")
        zone = await self.get(namespace, name)
        row = await self.db.one(Q["get_file"], fid, zone.id)
        if row is None:
            raise NotFound("landing file not found")
        return _file(row)

    async def delete_file(self, namespace: str, name: str, file_id: str) -> None:
        row = await self.file(namespace, name, file_id)
        await self.db.execrows(Q["delete_file"], row.id)
        await self.storage.delete(row.s3_path)

    async def download(self, namespace: str, name: str,
                       file_id: str) -> tuple[LandingFile, AsyncIterator[bytes]]:
        row = await self.file(namespace, name, file_id)
        if await self.storage.stat(row.s3_path) is None:
            raise NotFound("landing file content is missing")
        return row, self.storage.iter_chunks(row.s3_path)

    async def preview_file(self, namespace: str, name: str, file_id: str,
                           limit: int = PREVIEW_DEFAULT) -> FilePreview:
        check_preview_limit(limit)
        row = await self.file(namespace, name, file_id)
        return await self._preview(row.s3_path, row.filename, limit)

    async def _preview(self, key: str, filename: str, limit: int) -> FilePreview:
        fmt = landing_preview.preview_format(filename)
        if fmt is None:
            raise UnsupportedMedia("preview supports CSV/TSV, JSON/NDJSON and Parquet files "
                                   "(optionally .gz)")
        if await self.storage.stat(key) is None:
            raise NotFound("landing file content is missing")
        uri = self.storage.uri(key)
        try:
            out = await asyncio.to_thread(landing_preview.preview, uri, filename, limit, self.spec)
        except QueryError as exc:
            raise Invalid(f"cannot preview {filename}: " + str(exc).replace(uri, key)) from None
        return FilePreview(columns=list(out.columns), rows=out.rows, total_rows=out.total_rows,
                           duration_ms=out.duration_ms, truncated=out.truncated, format=fmt)

    # samples -------------------------------------------------------------------------------

    async def samples(self, namespace: str, name: str) -> SampleList:
        zone = await self.get(namespace, name)
        entries = [FileEntry(path=o.key, size=o.size, modified=o.modified, type="sample")
                   for o in await self.storage.list(zone.prefix + SAMPLES)]
        return SampleList(files=entries, total=len(entries))

    async def add_sample(self, zone: LandingZone, upload: Upload) -> SampleUploaded:
        key = zone.prefix + SAMPLES + validate_filename(upload.filename)
        await self.storage.adopt_file(key, upload.path)
        await self.events.emit("file_uploaded", path=key)
        return SampleUploaded(path=key, filename=upload.filename, size=upload.size)

    async def delete_sample(self, namespace: str, name: str, filename: str) -> None:
        zone = await self.get(namespace, name)
        if not await self.storage.delete(zone.prefix + SAMPLES + validate_filename(filename)):
            raise NotFound("sample not found")

    async def preview_sample(self, namespace: str, name: str, filename: str,
                             limit: int = PREVIEW_DEFAULT) -> FilePreview:
        check_preview_limit(limit)
        zone = await self.get(namespace, name)
        key = zone.prefix + SAMPLES + validate_filename(filename)
        if await self.storage.stat(key) is None:
            raise NotFound("sample not found")
        return await self._preview(key, filename, limit)

    # processed -----------------------------------------------------------------------------

    async def processed(self, namespace: str, name: str, *, run_id: str | None = None,
                        limit: int = 50, offset: int = 0) -> ProcessedPage:
        check_page(limit, offset)
        wanted = str(parse_uuid(run_id, "run_id")) if run_id else None
        zone = await self.get(namespace, name)
        base = zone.prefix + PROCESSED
        entries = []
        for obj in await self.storage.list(base):
            rid = obj.key[len(base):].split("/", 1)[0]
            if wanted is None or rid == wanted:
                entries.append(ProcessedEntry(path=obj.key, run_id=rid, size=obj.size,
                                              modified=obj.modified))
        entries.sort(key=lambda e: (e.modified, e.path), reverse=True)
        return ProcessedPage(files=entries[offset:offset + limit], total=len(entries))

    # what runs read --------------------------------------------------------------------------

    async def unprocessed_uris(self, namespace: str, name: str) -> builtins.list[str]:
        """Top-level files of a zone (never `_samples/` or `_processed/`), as engine URIs."""
        prefix = f"{namespace}/landing/{name}/"
        return [self.storage.uri(o.key) for o in await self.storage.list(prefix, recursive=False)
                if "/" not in o.key[len(prefix):]]


def _check_text(description: str, expected_schema: str) -> None:
    if len(description) > MAX_DESCRIPTION:
        raise Invalid(f"description must be at most {MAX_DESCRIPTION} characters")
    if len(expected_schema) > MAX_EXPECTED_SCHEMA:
        raise Invalid(f"expected_schema must be at most {MAX_EXPECTED_SCHEMA} characters")


def _lifecycle_days(body: LifecycleUpdate, zone: LandingZone) -> int | None:
    days = body.processed_max_age_days
    if isinstance(days, msgspec.UnsetType):
        return zone.processed_max_age_days
    if days is not None and not 1 <= days <= 3650:
        raise Invalid("processed_max_age_days must be between 1 and 3650, or null")
    return days
