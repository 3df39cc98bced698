"""Retention admin endpoints over HTTP (per-pipeline overrides: tests/e2e/test_versions.py)."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx

from tests.conftest import RatServer

DEFAULTS = {"runs_max_per_pipeline": 100, "runs_max_age_days": 90, "logs_max_age_days": 30,
            "quality_results_max_per_test": 100, "soft_delete_purge_days": 30,
            "stuck_run_timeout_minutes": 120, "audit_log_max_age_days": 365,
            "nessie_orphan_branch_max_age_hours": 6, "reaper_interval_minutes": 60,
            "iceberg_snapshot_max_age_days": 7, "iceberg_orphan_file_max_age_days": 3}


def _sql(dsn: str, query: str) -> None:
    async def go() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(query)
        finally:
            await conn.close()

    asyncio.run(go())


def test_config_status_and_run_now(local_server: RatServer, api: httpx.Client) -> None:
    assert api.get("/admin/retention/config").json() == {"config": DEFAULTS}
    try:
        changed = api.put("/admin/retention/config", json={"logs_max_age_days": 7, "other": 1})
        assert changed.status_code == 200
        assert changed.json()["config"] == {**DEFAULTS, "logs_max_age_days": 7}
        assert api.get("/admin/retention/config").json()["config"]["logs_max_age_days"] == 7
        for bad in ({"runs_max_age_days": 0}, {"runs_max_age_days": "5"},
                    {"reaper_interval_minutes": True}, {"runs_max_per_pipeline": 1.5}):
            resp = api.put("/admin/retention/config", json=bad)
            assert resp.status_code == 400, bad
            assert next(iter(bad)) in resp.json()["error"]["message"]
        assert api.put("/admin/retention/config", content=b"[]",
                       headers={"Content-Type": "application/json"}).status_code == 400
    finally:
        api.put("/admin/retention/config", json=DEFAULTS)

    before = api.get("/admin/retention/status").json()
    assert set(before) == {"last_run_at", "runs_pruned", "logs_pruned", "quality_pruned",
                           "pipelines_purged", "runs_failed", "branches_cleaned",
                           "lz_files_cleaned", "audit_pruned", "snapshots_expired",
                           "orphan_files_removed", "tables_compacted", "blobs_deleted",
                           "running", "updated_at"}
    ran = api.post("/admin/retention/run")
    assert ran.status_code == 202, ran.text
    assert ran.json()["running"] is False
    assert ran.json()["last_run_at"] is not None

    _sql(local_server.dsn, "UPDATE reaper_status SET running = true, updated_at = now()")
    try:
        busy = api.post("/admin/retention/run")
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "FAILED_PRECONDITION"
    finally:
        _sql(local_server.dsn, "UPDATE reaper_status SET running = false")
