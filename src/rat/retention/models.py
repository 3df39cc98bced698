"""Retention settings and reaper status shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from rat.pipelines.retention import PIPELINE_KEYS


class RetentionConfig(msgspec.Struct, kw_only=True):
    """System-wide retention (every value an integer >= 1); stored in platform_settings.

    The defaults equal `rat.pipelines.retention.DEFAULTS` (a unit test keeps them in step).
    """

    runs_max_per_pipeline: int = 100
    runs_max_age_days: int = 90
    logs_max_age_days: int = 30
    quality_results_max_per_test: int = 100
    soft_delete_purge_days: int = 30
    stuck_run_timeout_minutes: int = 120
    audit_log_max_age_days: int = 365
    nessie_orphan_branch_max_age_hours: int = 6
    reaper_interval_minutes: int = 60
    iceberg_snapshot_max_age_days: int = 7
    iceberg_orphan_file_max_age_days: int = 3


RETENTION_KEYS = tuple(RetentionConfig.__struct_fields__)


class ConfigEnvelope(msgspec.Struct, kw_only=True):
    config: RetentionConfig


class ReaperStatus(msgspec.Struct, kw_only=True):
    last_run_at: datetime | None
    runs_pruned: int
    logs_pruned: int
    quality_pruned: int
    pipelines_purged: int
    runs_failed: int
    branches_cleaned: int
    lz_files_cleaned: int
    audit_pruned: int
    snapshots_expired: int
    orphan_files_removed: int
    tables_compacted: int
    blobs_deleted: int
    running: bool
    updated_at: datetime


def effective(system: RetentionConfig, overrides: dict[str, Any] | None) -> RetentionConfig:
    known = {k: v for k, v in (overrides or {}).items() if k in PIPELINE_KEYS}
    return msgspec.structs.replace(system, **known)
