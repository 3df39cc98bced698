"""Run shapes as the API returns them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec

RunStatus = Literal["pending", "running", "success", "failed", "cancelled"]
ACTIVE = ("pending", "running")
TERMINAL = ("success", "failed", "cancelled")
LOG_LEVELS = ("debug", "info", "warn", "error")


class Run(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    pipeline_id: uuid.UUID
    namespace: str
    layer: str
    pipeline: str
    status: str
    phase: str | None
    trigger: str
    version_number: int | None
    attempt: int
    max_attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    rows_written: int | None
    snapshot_id: int | None
    error: str | None
    created_at: datetime
    logs_s3_path: None = None


class QualitySummary(msgspec.Struct, kw_only=True):
    total: int
    passed: int
    failed: int
    warned: int


class RunDetail(Run, kw_only=True):
    phase_profiles: list[dict[str, Any]]
    quality: QualitySummary | None
    scheduled_for: datetime | None
    request_id: str | None


class RunPage(msgspec.Struct, kw_only=True):
    runs: list[Run]
    total: int


class RunLog(msgspec.Struct, kw_only=True):
    seq: int
    timestamp: datetime
    level: str
    message: str


class RunLogs(msgspec.Struct, kw_only=True):
    logs: list[RunLog]
    status: str


class RunCreate(msgspec.Struct, kw_only=True):
    namespace: str = "default"
    layer: str = ""
    pipeline: str = ""
    trigger: str = "manual"


class RunCreated(msgspec.Struct, kw_only=True):
    run_id: uuid.UUID
    status: str


class RunCancelled(msgspec.Struct, kw_only=True):
    run_id: uuid.UUID
    status: str = "cancelled"


class Claimed(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    pipeline_id: uuid.UUID
    version_number: int | None
    attempt: int
    max_attempts: int
    trigger: str
    lease_token: uuid.UUID
    started_at: datetime
    created_at: datetime


_RUN_FIELDS = set(Run.__struct_fields__)


def run_from_row(row: dict[str, Any]) -> Run:
    return msgspec.convert({k: v for k, v in row.items() if k in _RUN_FIELDS}, Run)


def detail_from_row(row: dict[str, Any]) -> RunDetail:
    fields = {k: v for k, v in row.items() if k in _RUN_FIELDS}
    quality = row.get("quality_summary")
    return RunDetail(
        **fields, phase_profiles=row.get("phase_profiles") or [],
        quality=msgspec.convert(quality, QualitySummary) if quality else None,
        scheduled_for=row.get("scheduled_for"), request_id=row.get("request_id"))
