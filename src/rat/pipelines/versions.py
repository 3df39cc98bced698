"""Publish, versions and rollback: immutable, content-addressed snapshots of a pipeline's files.

Publish validates the draft, stores every file as a `sha256` blob (deduplicated), and creates
version N+1 in one transaction. Rollback creates a new version from an old file map and can put
the table back on the snapshot that version published (a metadata-only Iceberg commit).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any, Protocol

import msgspec

from rat.core.errors import FailedPrecondition, Invalid, NotFound, ValidationFailed
from rat.core.events import EventBus
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.engine.catalog import IcebergTables, SnapshotGone
from rat.engine.run import ENTRY_FILES
from rat.engine.validate import Validation, validate
from rat.pipelines.models import (
    Pipeline,
    PipelineVersion,
    PublishRequest,
    PublishResult,
    RollbackRequest,
    RollbackResult,
    VersionFile,
    VersionPage,
)
from rat.pipelines.service import PipelinesService, blob_key, check_page, content_id
from rat.storage.base import Storage

log = logging.getLogger(__name__)
Q = load_queries("rat.pipelines")
MAX_MESSAGE = 1000


def tag_name(version_number: int) -> str:
    return f"rat_v{version_number}"


def _check_message(message: str | None) -> None:
    if message is not None and len(message) > MAX_MESSAGE:
        raise Invalid("message must be at most 1000 characters")


def _validation_body(validation: Validation) -> dict[str, Any]:
    return {"valid": validation.valid, "files": msgspec.to_builtins(validation.files)}


class CycleCheck(Protocol):
    """Lineage's publish check (a ref() cycle through the pipeline is a publish error)."""

    async def publish_errors(self, namespace: str, layer: str, name: str,
                             files: dict[str, str]) -> list[str]: ...


def _add_entry_errors(result: Validation, prefix: str, errors: list[str]) -> None:
    entry = next((f for f in result.files if f.path.removeprefix(prefix) in ENTRY_FILES), None)
    if entry is None:
        return
    entry.errors.extend(errors)
    entry.valid = False
    result.valid = False


class VersionsService:
    def __init__(self, db: Database, storage: Storage, pipelines: PipelinesService,
                 tables: IcebergTables, events: EventBus, lineage: CycleCheck) -> None:
        self.lineage = lineage
        self.db = db
        self.storage = storage
        self.pipelines = pipelines
        self.tables = tables
        self.events = events

    async def validate(self, pipeline: Pipeline, files: dict[str, str]) -> Validation:
        def table_exists(ident: str) -> bool:
            state = self.tables.state(ident)
            return state is not None and state.published

        result = await asyncio.to_thread(validate, files, prefix=pipeline.prefix,
                                         namespace=pipeline.namespace, table_exists=table_exists)
        cycles = await self.lineage.publish_errors(pipeline.namespace, pipeline.layer,
                                                   pipeline.name, files)
        if cycles:
            _add_entry_errors(result, pipeline.prefix, cycles)
        return result

    async def publish(self, namespace: str, layer: str, name: str, body: PublishRequest, *,
                      created_by: str | None = None) -> PublishResult:
        """Validate the draft and make it version N+1 (or report it unchanged)."""
        _check_message(body.message)
        pipeline = await self.pipelines.get(namespace, layer, name)
        raw = await self.pipelines.draft_bytes(pipeline)
        validation = await self.validate(
            pipeline, {p: d.decode("utf-8", errors="replace") for p, d in raw.items()})
        if not validation.valid:
            raise ValidationFailed("pipeline validation failed",
                                   extra={"validation": _validation_body(validation)})
        versions = {path: content_id(data) for path, data in raw.items()}
        if pipeline.current_version is not None and versions == pipeline.published_versions:
            current = await self._version_row(pipeline, pipeline.current_version)
            return PublishResult(status="unchanged", version=pipeline.current_version,
                                 message=current["message"], versions=versions,
                                 validation=_validation_body(validation))
        for path, data in raw.items():
            await self._store_blob(versions[path], data)
        number = await self._create_version(pipeline, versions, body.message,
                                            validation.config or {}, created_by=created_by)
        await self.events.emit("pipeline_published", pipeline_id=str(pipeline.id),
                               namespace=namespace, layer=layer, name=name, version=number)
        return PublishResult(status="published", version=number, message=body.message,
                             versions=versions, validation=_validation_body(validation))

    async def _store_blob(self, cid: str, data: bytes) -> None:
        key = blob_key(cid)
        if await self.storage.stat(key) is None:
            await self.storage.write(key, data)

    async def _create_version(self, pipeline: Pipeline, versions: dict[str, str], message: str,
                              config: dict[str, Any], *, created_by: str | None,
                              snapshot_id: int | None = None) -> int:
        """Insert version N+1, point the pipeline at it and prune old versions, atomically."""
        dirty = await self.pipelines.draft_hashes(pipeline) != versions
        async with self.db.transaction() as conn:
            locked = await self.db.one(Q["lock_pipeline"], pipeline.id, conn=conn)
            if locked is None:
                raise NotFound(f"pipeline {pipeline.ident} not found")
            number = int(locked["last_version"]) + 1
            await self.db.exec(Q["insert_version"], uuid.uuid4(), pipeline.id, number, message,
                               versions, config, snapshot_id, created_by, conn=conn)
            await self.db.exec(Q["set_current_version"], pipeline.id, number, versions, dirty,
                               conn=conn)
            pruned = await self.db.many(Q["prune_versions"], pipeline.id,
                                        int(locked["max_versions"]), number, conn=conn)
        if pruned:
            await self._drop_tags(pipeline, [int(r["version_number"]) for r in pruned])
        return number

    async def _drop_tags(self, pipeline: Pipeline, numbers: list[int]) -> None:
        try:
            await asyncio.to_thread(self.tables.remove_tags, pipeline.ident,
                                    [tag_name(n) for n in numbers])
        except Exception:
            log.exception("cannot drop version tags of %s", pipeline.ident)

    async def _version_row(self, pipeline: Pipeline, number: int) -> dict[str, Any]:
        if number < 1:
            raise Invalid("version must be an integer >= 1")
        row = await self.db.one(Q["get_version"], pipeline.id, number)
        if row is None:
            raise NotFound(f"version {number} of {pipeline.ident} not found")
        return row

    async def list(self, namespace: str, layer: str, name: str, *, limit: int = 50,
                   offset: int = 0) -> VersionPage:
        check_page(limit, offset)
        pipeline = await self.pipelines.get(namespace, layer, name)
        rows = await self.db.many(Q["list_versions"], pipeline.id, limit, offset)
        total = int(rows[0]["total"]) if rows else int(
            await self.db.val(Q["count_versions"], pipeline.id))
        return VersionPage(versions=[_version(r) for r in rows], total=total)

    async def get(self, namespace: str, layer: str, name: str, number: int, *,
                  include_content: bool = False) -> PipelineVersion:
        pipeline = await self.pipelines.get(namespace, layer, name)
        version = _version(await self._version_row(pipeline, number))
        if include_content:
            version.files = [await self._file(path, cid)
                             for path, cid in sorted(version.published_versions.items())]
        return version

    async def _file(self, path: str, cid: str) -> VersionFile:
        data = await self.storage.read(blob_key(cid))
        return VersionFile(path=path, content_id=cid, size=len(data),
                           content=data.decode("utf-8", errors="replace"))

    async def sidecar(self, namespace: str, layer: str, name: str, rel: str) -> dict[str, str]:
        """A read-only metadata sidecar (`pipeline.meta.yaml`, `tests/quality.meta.yaml`)."""
        pipeline = await self.pipelines.get(namespace, layer, name)
        data = await self.storage.read_optional(pipeline.prefix + rel)
        if data is None:
            raise NotFound(f"{rel} not found")
        return {"path": pipeline.prefix + rel, "content": data.decode("utf-8", errors="replace")}

    async def rollback(self, namespace: str, layer: str, name: str, body: RollbackRequest, *,
                       created_by: str | None = None) -> RollbackResult:
        """New version from an old file map; with restore_data, the table goes back too."""
        _check_message(body.message)
        pipeline = await self.pipelines.get(namespace, layer, name)
        old = await self._version_row(pipeline, body.version)
        message = body.message or f"Rollback to v{body.version}"
        snapshot_id = await self._restore(pipeline, old) if body.restore_data else None
        number = await self._create_version(pipeline, old["published_versions"], message,
                                            old["config"] or {}, created_by=created_by,
                                            snapshot_id=snapshot_id)
        if snapshot_id is not None:
            await self._tag(pipeline, number, snapshot_id)
        await self.events.emit("pipeline_published", pipeline_id=str(pipeline.id),
                               namespace=namespace, layer=layer, name=name, version=number)
        return RollbackResult(status="rolled_back", from_version=body.version, new_version=number,
                              message=message, data_restored=snapshot_id is not None,
                              snapshot_id=snapshot_id)

    async def _restore(self, pipeline: Pipeline, version: dict[str, Any]) -> int:
        if await self.db.val(Q["pipeline_has_active_run"], pipeline.id):
            raise FailedPrecondition("a run of this pipeline is active; try again when it ends")
        target = version["data_snapshot_id"]
        if target is None:
            raise FailedPrecondition(
                f"version {version['version_number']} has no retained data snapshot")
        properties = {"rat.operation": "rollback", "rat.run_id": "",
                      "rat.pipeline_version": str(version["version_number"]),
                      "rat.merge_strategy": str((version["config"] or {}).get("merge_strategy", ""))}
        try:
            snapshot_id = await asyncio.to_thread(self.tables.restore, pipeline.ident,
                                                  int(target), properties)
        except SnapshotGone as exc:
            raise FailedPrecondition(str(exc)) from None
        await self.events.emit("table_changed", namespace=pipeline.namespace,
                               layer=pipeline.layer, name=pipeline.name)
        return snapshot_id

    async def _tag(self, pipeline: Pipeline, number: int, snapshot_id: int) -> None:
        try:
            await asyncio.to_thread(self.tables.tag, pipeline.ident, tag_name(number), snapshot_id)
        except Exception:
            log.exception("cannot tag %s with %s", pipeline.ident, tag_name(number))


def _version(row: dict[str, Any]) -> PipelineVersion:
    return PipelineVersion(
        id=row["id"], pipeline_id=row["pipeline_id"], version_number=row["version_number"],
        message=row["message"], published_versions=row["published_versions"],
        data_snapshot_id=row["data_snapshot_id"], created_by=row["created_by"],
        created_at=row["created_at"])
