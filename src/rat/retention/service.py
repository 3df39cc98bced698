"""Retention settings: the system config and the reaper's status.

Per-pipeline overrides live with the pipeline (`rat.pipelines.retention`).
"""

from __future__ import annotations

from typing import Any

import msgspec

from rat.core.errors import Invalid, NotFound
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.retention.models import RETENTION_KEYS, ReaperStatus, RetentionConfig

Q = load_queries("rat.retention")
SETTING_KEY = "retention"


def check_values(body: dict[str, Any]) -> dict[str, int]:
    """The retention keys of `body`, each an integer >= 1; unknown fields are ignored."""
    out: dict[str, int] = {}
    for key, value in body.items():
        if key not in RETENTION_KEYS:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise Invalid(f"{key}: must be an integer >= 1")
        out[key] = value
    return out


class RetentionSettings:
    """The system-wide retention config (platform_settings) and the reaper's counters."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.cached = RetentionConfig()

    async def config(self) -> RetentionConfig:
        stored = await self.db.val(Q["get_setting"], SETTING_KEY) or {}
        known = {k: v for k, v in stored.items() if k in RETENTION_KEYS}
        self.cached = msgspec.convert(known, RetentionConfig)
        return self.cached

    async def update(self, body: dict[str, Any]) -> RetentionConfig:
        """Merge a full or partial config into the stored one."""
        changes = check_values(body)
        merged = msgspec.structs.replace(await self.config(), **changes)
        await self.db.exec(Q["put_setting"], SETTING_KEY, msgspec.to_builtins(merged))
        self.cached = merged
        return merged

    async def status(self) -> ReaperStatus:
        row = await self.db.one(Q["get_status"], into=ReaperStatus)
        if row is None:
            raise NotFound("reaper status missing")
        return row
