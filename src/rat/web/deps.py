"""The service container handlers receive, and small request helpers."""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from litestar import Request

from rat.config import Settings
from rat.core.errors import Invalid
from rat.files.service import FilesService
from rat.landing.service import LandingService
from rat.lineage.service import LineageService
from rat.namespaces.service import NamespacesService
from rat.pipelines.preview import PreviewService
from rat.pipelines.retention import RetentionService
from rat.pipelines.service import PipelinesService
from rat.pipelines.versions import VersionsService
from rat.quality.service import QualityService
from rat.query.service import QueryService
from rat.retention.reaper import Reaper
from rat.retention.service import RetentionSettings
from rat.runs.service import RunsService
from rat.schedules.firing import TriggerFiring
from rat.schedules.service import SchedulesService
from rat.schedules.triggers import TriggersService
from rat.tables.service import TablesService

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclass
class Services:
    settings: Settings
    pipelines: PipelinesService
    runs: RunsService
    files: FilesService
    tables: TablesService
    query: QueryService
    namespaces: NamespacesService
    lineage: LineageService
    readiness: Callable[[], Awaitable[dict[str, Any]]]
    versions: VersionsService
    preview: PreviewService
    quality: QualityService
    retention: RetentionService
    landing: LandingService
    schedules: SchedulesService
    triggers: TriggersService
    firing: TriggerFiring
    retention_settings: RetentionSettings
    reaper: Reaper
    metrics: Callable[[], Awaitable[str]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def services(request: Request[Any, Any, Any]) -> Services:
    svc: Services = request.app.state["services"]
    return svc


def request_id(request: Request[Any, Any, Any]) -> str:
    rid = request.scope.get("state", {}).get("request_id")
    return str(rid) if rid else ""


def new_request_id(header: str | None) -> str:
    return header if header and _REQUEST_ID.match(header) else uuid.uuid4().hex


def int_param(value: str | None, name: str, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise Invalid(f"{name} must be an integer") from None


def bool_param(value: str | None, name: str, *, default: bool = False) -> bool:
    if value is None or value == "":
        return default
    if value.lower() in ("true", "1"):
        return True
    if value.lower() in ("false", "0"):
        return False
    raise Invalid(f"{name} must be true, false, 1 or 0")
