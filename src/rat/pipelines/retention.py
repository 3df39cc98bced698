"""Per-pipeline retention overrides over the system retention config (`platform_settings`)."""

from __future__ import annotations

from typing import Any

import msgspec

from rat.core.errors import Invalid
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.pipelines.service import PipelinesService

Q = load_queries("rat.pipelines")
SYSTEM_KEY = "retention"
DEFAULTS: dict[str, int] = {
    "runs_max_per_pipeline": 100, "runs_max_age_days": 90, "logs_max_age_days": 30,
    "quality_results_max_per_test": 100, "soft_delete_purge_days": 30,
    "stuck_run_timeout_minutes": 120, "audit_log_max_age_days": 365,
    "nessie_orphan_branch_max_age_hours": 6, "reaper_interval_minutes": 60,
    "iceberg_snapshot_max_age_days": 7, "iceberg_orphan_file_max_age_days": 3,
}
# Only the keys the reaper applies per pipeline may be overridden.
PIPELINE_KEYS = ("runs_max_per_pipeline", "runs_max_age_days", "logs_max_age_days",
                 "quality_results_max_per_test", "stuck_run_timeout_minutes",
                 "iceberg_snapshot_max_age_days", "iceberg_orphan_file_max_age_days")


class RetentionView(msgspec.Struct, kw_only=True):
    system: dict[str, int]
    overrides: dict[str, int] | None
    effective: dict[str, int]


def check_overrides(body: dict[str, Any]) -> dict[str, int]:
    for key, value in body.items():
        if key not in PIPELINE_KEYS:
            raise Invalid(f"{key}: cannot be set per pipeline (allowed: {', '.join(PIPELINE_KEYS)})")
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise Invalid(f"{key}: must be an integer >= 1")
    return {k: int(v) for k, v in body.items()}


class RetentionService:
    def __init__(self, db: Database, pipelines: PipelinesService) -> None:
        self.db = db
        self.pipelines = pipelines

    async def system(self) -> dict[str, int]:
        stored = await self.db.val(Q["get_setting"], SYSTEM_KEY) or {}
        return {k: int(stored.get(k, v)) for k, v in DEFAULTS.items()}

    async def get(self, namespace: str, layer: str, name: str) -> RetentionView:
        pipeline = await self.pipelines.get(namespace, layer, name)
        system = await self.system()
        overrides = pipeline.retention_config or None
        return RetentionView(system=system, overrides=overrides,
                             effective={**system, **(overrides or {})})

    async def put(self, namespace: str, layer: str, name: str, body: dict[str, Any]) -> None:
        """Replace the overrides; `{}` clears them."""
        pipeline = await self.pipelines.get(namespace, layer, name)
        overrides = check_overrides(body)
        await self.db.exec(Q["set_retention_config"], pipeline.id, overrides or None)
