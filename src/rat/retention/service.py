"""Retention settings: the system config, per-pipeline overrides and the reaper's status."""

from __future__ import annotations

from typing import Any

import msgspec

from rat.core.errors import Invalid, NotFound
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.pipelines.service import PipelinesService
from rat.retention.models import (
    PIPELINE_KEYS,
    RETENTION_KEYS,
    PipelineRetention,
    ReaperStatus,
    RetentionConfig,
    effective,
)

Q = load_queries("rat.retention")
SETTING_KEY = "retention"


def check_values(body: dict[str, Any], allowed: tuple[str, ...]) -> dict[str, int]:
    """The retention keys of `body`, each an integer >= 1; unknown fields are ignored."""
    out: dict[str, int] = {}
    for key, value in body.items():
        if key not in RETENTION_KEYS:
            continue
        if key not in allowed:
            raise Invalid(f"{key}: cannot be overridden per pipeline "
                          f"(allowed: {', '.join(allowed)})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise Invalid(f"{key}: must be an integer >= 1")
        out[key] = value
    return out


class RetentionService:
    def __init__(self, db: Database, pipelines: PipelinesService) -> None:
        self.db = db
        self.pipelines = pipelines
        self.cached = RetentionConfig()

    async def config(self) -> RetentionConfig:
        stored = await self.db.val(Q["get_setting"], SETTING_KEY) or {}
        known = {k: v for k, v in stored.items() if k in RETENTION_KEYS}
        self.cached = msgspec.convert(known, RetentionConfig)
        return self.cached

    async def update(self, body: dict[str, Any]) -> RetentionConfig:
        """Merge a full or partial config into the stored one."""
        changes = check_values(body, RETENTION_KEYS)
        merged = msgspec.structs.replace(await self.config(), **changes)
        await self.db.exec(Q["put_setting"], SETTING_KEY, msgspec.to_builtins(merged))
        self.cached = merged
        return merged

    async def status(self) -> ReaperStatus:
        row = await self.db.one(Q["get_status"], into=ReaperStatus)
        if row is None:
            raise NotFound("reaper status missing")
        return row

    async def for_pipeline(self, namespace: str, layer: str, name: str) -> PipelineRetention:
        pipeline = await self.pipelines.get(namespace, layer, name)
        system = await self.config()
        overrides = pipeline.retention_config or None
        return PipelineRetention(system=system, overrides=overrides,
                                 effective=effective(system, overrides))

    async def set_for_pipeline(self, namespace: str, layer: str, name: str,
                               body: dict[str, Any]) -> None:
        """Replace the pipeline's overrides; `{}` clears them."""
        pipeline = await self.pipelines.get(namespace, layer, name)
        overrides = check_values(body, PIPELINE_KEYS)
        await self.db.execrows(Q["set_pipeline_retention"], pipeline.id, overrides or None)
