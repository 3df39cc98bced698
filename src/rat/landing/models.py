"""Landing zone and landing file shapes as the API returns and accepts them."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import msgspec

from rat.files.service import FileEntry


class LandingZone(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    namespace: str
    name: str
    description: str
    owner: str | None
    expected_schema: str
    processed_max_age_days: int | None
    auto_purge: bool
    file_count: int
    total_bytes: int
    created_at: datetime
    updated_at: datetime

    @property
    def prefix(self) -> str:
        return zone_prefix(self.namespace, self.name)


def zone_prefix(namespace: str, name: str) -> str:
    return f"{namespace}/landing/{name}/"


class ZonePage(msgspec.Struct, kw_only=True):
    zones: list[LandingZone]
    total: int


class ZoneCreate(msgspec.Struct, kw_only=True):
    namespace: str = "default"
    name: str = ""
    description: str = ""
    expected_schema: str = ""


class ZoneUpdate(msgspec.Struct, kw_only=True):
    description: str | None = None
    owner: str | None = None
    expected_schema: str | None = None


class LandingFile(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    zone_id: uuid.UUID
    filename: str
    s3_path: str
    size_bytes: int
    content_type: str
    uploaded_by: str | None
    uploaded_at: datetime
    processed_run_id: uuid.UUID | None
    processed_at: datetime | None


class FilePage(msgspec.Struct, kw_only=True):
    files: list[LandingFile]
    total: int


class SampleList(msgspec.Struct, kw_only=True):
    files: list[FileEntry]
    total: int


class SampleUploaded(msgspec.Struct, kw_only=True):
    path: str
    filename: str
    size: int
    status: str = "uploaded"


class ProcessedEntry(msgspec.Struct, kw_only=True):
    path: str
    run_id: str
    size: int
    modified: datetime


class ProcessedPage(msgspec.Struct, kw_only=True):
    files: list[ProcessedEntry]
    total: int


class Lifecycle(msgspec.Struct, kw_only=True):
    processed_max_age_days: int | None
    auto_purge: bool


class LifecycleUpdate(msgspec.Struct, kw_only=True):
    processed_max_age_days: int | msgspec.UnsetType | None = msgspec.UNSET
    auto_purge: bool | msgspec.UnsetType = msgspec.UNSET


class FilePreview(msgspec.Struct, kw_only=True):
    columns: list[Any]
    rows: list[dict[str, Any]]
    total_rows: int
    duration_ms: int
    truncated: bool
    format: str


class Upload(msgspec.Struct, kw_only=True):
    """A spooled upload the web layer hands to the service (a local temp file)."""

    path: Path
    filename: str
    size: int
    content_type: str
