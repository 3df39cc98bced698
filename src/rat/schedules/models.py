"""Schedule and trigger shapes as the API returns and accepts them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

TRIGGER_TYPES = ("landing_zone_upload", "file_pattern", "pipeline_success", "webhook", "cron",
                 "cron_dependency")


class Schedule(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    pipeline_id: uuid.UUID
    namespace: str
    layer: str
    pipeline: str
    cron: str
    timezone: str
    enabled: bool
    last_run_id: uuid.UUID | None
    last_run_at: datetime | None
    next_run_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SchedulePage(msgspec.Struct, kw_only=True):
    schedules: list[Schedule]
    total: int


class ScheduleCreate(msgspec.Struct, kw_only=True):
    namespace: str = "default"
    layer: str = ""
    pipeline: str = ""
    cron: str = ""
    enabled: bool = True
    timezone: str = "UTC"


class ScheduleUpdate(msgspec.Struct, kw_only=True):
    cron: str | None = None
    enabled: bool | None = None
    timezone: str | None = None


class TriggerFields(msgspec.Struct, kw_only=True):
    """What every view of a trigger carries."""

    id: uuid.UUID
    pipeline_id: uuid.UUID
    type: str
    config: dict[str, Any]
    enabled: bool
    cooldown_seconds: int
    last_triggered_at: datetime | None
    last_run_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime


class Trigger(TriggerFields, kw_only=True, omit_defaults=True):
    webhook_url: str | msgspec.UnsetType = msgspec.UNSET
    webhook_token: str | msgspec.UnsetType = msgspec.UNSET


class TriggerPage(msgspec.Struct, kw_only=True):
    triggers: list[Trigger]
    total: int


class TriggerCreate(msgspec.Struct, kw_only=True):
    type: str = ""
    config: dict[str, Any] = msgspec.field(default_factory=dict)
    enabled: bool = True
    cooldown_seconds: int = 0


class TriggerUpdate(msgspec.Struct, kw_only=True):
    config: dict[str, Any] | None = None
    enabled: bool | None = None
    cooldown_seconds: int | None = None


class ZoneWatcher(msgspec.Struct, kw_only=True):
    """A trigger watching a landing zone, with the pipeline it starts."""

    id: uuid.UUID
    type: str
    config: dict[str, Any]
    enabled: bool
    last_triggered_at: datetime | None
    last_run_id: uuid.UUID | None
    namespace: str
    layer: str
    pipeline: str


class Fired(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A firing's outcome: the run it created, or the pending run it joined."""

    run_id: uuid.UUID
    coalesced: bool = False


class TriggerRow(TriggerFields, kw_only=True):
    """A trigger as the firing code reads it (with its pipeline's natural key)."""

    armed_at: datetime | None
    token_hash: str | None
    namespace: str
    layer: str
    pipeline: str

    def public(self, **extra: Any) -> Trigger:
        fields = {f: getattr(self, f) for f in TriggerFields.__struct_fields__}
        return Trigger(**fields, **extra)
