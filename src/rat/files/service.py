"""File use cases over storage keys, with the spec's read/write boundaries."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import msgspec

from rat.core.errors import Invalid, NotFound, TooLarge, UnsupportedMedia
from rat.core.events import EventBus
from rat.core.ids import LAYERS
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.pipelines.models import Pipeline
from rat.pipelines.service import PipelinesService, content_id
from rat.plugins.protocols import ReadScope
from rat.storage.base import Storage
from rat.storage.keys import validate_key

Q = load_queries("rat.files")
MAX_LIST = 10_000
MAX_READ_BYTES = 2 * 1024 * 1024
MAX_WRITE_BYTES = 1024 * 1024


class FileEntry(msgspec.Struct, kw_only=True):
    path: str
    size: int
    modified: datetime
    type: str


class FileList(msgspec.Struct, kw_only=True):
    files: list[FileEntry]
    truncated: bool


class FileContent(msgspec.Struct, kw_only=True):
    path: str
    content: str
    size: int
    modified: datetime
    version_id: str


class FileWritten(msgspec.Struct, kw_only=True):
    path: str
    status: str
    version_id: str


class FileUploaded(msgspec.Struct, kw_only=True):
    path: str
    filename: str
    size: int
    status: str
    version_id: str


def file_type(path: str) -> str:
    parts = path.split("/")
    name = parts[-1]
    if len(parts) > 2 and parts[1] == "landing":
        if "_samples" in parts:
            return "sample"
        return "processed" if "_processed" in parts else "landing"
    rel = "/".join(parts[4:]) if len(parts) > 4 and parts[1] == "pipelines" else name
    simple = {"pipeline.sql": "pipeline-sql", "pipeline.py": "pipeline-py",
              "config.yaml": "config"}
    if rel in simple:
        return simple[rel]
    if name.endswith(".meta.yaml"):
        return "meta"
    if rel.startswith("tests/quality/") and name.endswith(".sql"):
        return "test"
    if rel.startswith("hooks/"):
        return "hook"
    if name.endswith(".md"):
        return "doc"
    return "pipeline-plugin" if rel.startswith("pipeline.") else "other"


class FilesService:
    def __init__(self, db: Database, storage: Storage, pipelines: PipelinesService,
                 events: EventBus) -> None:
        self.db = db
        self.storage = storage
        self.pipelines = pipelines
        self.events = events

    async def _namespace(self, path: str) -> list[str]:
        parts = validate_key(path).split("/")
        if parts[0].startswith("_"):
            raise NotFound("file not found")
        if not await self.db.val(Q["namespace_exists"], parts[0]):
            raise NotFound(f"namespace {parts[0]!r} not found")
        return parts

    async def _readable(self, path: str) -> list[str]:
        parts = await self._namespace(path)
        if len(parts) < 2 or parts[1] not in ("pipelines", "landing"):
            raise NotFound("file not found")
        return parts

    async def list(self, prefix: str, exclude: str | None = None,
                   scope: ReadScope | None = None) -> FileList:
        """Files under `prefix`; `scope` (from the authorizer) hides unreadable folders."""
        if not prefix:
            raise Invalid("prefix is required")
        parts = await self._namespace(prefix.rstrip("/"))
        if len(parts) > 1 and parts[1] not in ("pipelines", "landing"):
            return FileList(files=[], truncated=False)
        skip = {s.strip() for s in (exclude or "").split(",") if s.strip()}
        entries = []
        for obj in await self.storage.list(prefix):
            segments = obj.key.split("/")
            if len(segments) < 2 or segments[1] not in ("pipelines", "landing"):
                continue
            if skip & set(segments[:-1]):
                continue
            if scope is not None and not scope.allows_path(obj.key):
                continue
            entries.append(FileEntry(path=obj.key, size=obj.size, modified=obj.modified,
                                     type=file_type(obj.key)))
        return FileList(files=entries[:MAX_LIST], truncated=len(entries) > MAX_LIST)

    async def read(self, path: str) -> FileContent:
        await self._readable(path)
        info = await self.storage.stat(path)
        if info is None:
            raise NotFound("file not found")
        if info.size > MAX_READ_BYTES:
            raise UnsupportedMedia("file is larger than 2 MiB; download it instead")
        data = await self.storage.read(path)
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise UnsupportedMedia("file is binary and cannot be shown as text") from None
        if "\x00" in text:
            raise UnsupportedMedia("file is binary and cannot be shown as text")
        return FileContent(path=path, content=text, size=info.size, modified=info.modified,
                           version_id=content_id(data))

    async def _writable(self, path: str) -> Pipeline | None:
        """The pipeline owning `path`, or None for a zone sample; 404/400 otherwise."""
        parts = await self._namespace(path)
        if len(parts) >= 5 and parts[1] == "pipelines" and parts[2] in LAYERS:
            return await self.pipelines.get(parts[0], parts[2], parts[3])
        if len(parts) == 5 and parts[1] == "landing" and parts[3] == "_samples":
            if not await self.db.val(Q["zone_exists"], parts[0], parts[2]):
                raise NotFound(f"landing zone {parts[0]}.{parts[2]} not found")
            return None
        raise Invalid("files can only be written inside a pipeline folder "
                      "({ns}/pipelines/{layer}/{name}/...) or a zone's _samples/ folder")

    async def write(self, path: str, content: str) -> FileWritten:
        data = content.encode()
        if len(data) > MAX_WRITE_BYTES:
            raise TooLarge("content must be at most 1 MiB")
        pipeline = await self._writable(path)
        await self.storage.write(path, data)
        await self._after_change(pipeline, path)
        return FileWritten(path=path, status="written", version_id=content_id(data))

    async def check_writable(self, path: str) -> None:
        """Validate an upload destination before the body is read."""
        await self._writable(path)

    async def upload(self, path: str, source: Path, size: int, sha256: str) -> FileUploaded:
        pipeline = await self._writable(path)
        await self.storage.put_file(path, source)
        await self._after_change(pipeline, path)
        return FileUploaded(path=path, filename=path.rsplit("/", 1)[-1], size=size,
                            status="uploaded", version_id="sha256:" + sha256)

    async def delete(self, path: str) -> None:
        pipeline = await self._writable(path)
        if not await self.storage.delete(path):
            raise NotFound("file not found")
        await self._after_change(pipeline, path)

    async def _after_change(self, pipeline: Pipeline | None, path: str) -> None:
        if pipeline is not None:
            await self.pipelines.refresh_dirty(pipeline)
        await self.events.emit("file_uploaded", path=path)
