"""BM9: server-side time of the main UI pages with 100 pipelines and 10,000 runs in the database.

Seeds 100 pipelines through the API (so their files exist), a landing zone with 20 files, a
schedule and three triggers, and 10,000 runs (plus 2,000 log lines on one run) straight into
Postgres, then times each page: 3 warm-up requests, then 30 timed ones.
Floor: a static file served by the same process (HTTP + middleware cost without a page).
Target (issue 6): every main page renders in under 300 ms.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx

from bench.harness import BenchContext, Result, median, percentile

PIPELINES = 100
RUNS = 10_000
LOG_LINES = 2_000
ZONE_FILES = 20
REQUESTS = 30
TARGET_S = 0.300

SEED_RUNS = """
INSERT INTO runs (id, pipeline_id, version_number, status, phase, trigger, attempt, max_attempts,
                  started_at, finished_at, duration_ms, rows_written, error, phase_profiles,
                  created_at)
SELECT gen_random_uuid(), p.ids[1 + (g % array_length(p.ids, 1))], NULL,
       (ARRAY['success','success','success','failed','cancelled'])[1 + g % 5], NULL,
       CASE WHEN g % 7 = 0 THEN 'schedule:@hourly' ELSE 'manual' END, 1, 1,
       now() - make_interval(mins => g), now() - make_interval(mins => g) + interval '2 s',
       2000, g % 1000, CASE WHEN g % 5 = 3 THEN 'boom at row ' || g END,
       '[{"name":"load","duration_ms":5,"metadata":{}},{"name":"write","duration_ms":900,"metadata":{"rows_written":3}}]'::jsonb,
       now() - make_interval(mins => g)
FROM generate_series(1, $1) AS g, (SELECT array_agg(id) AS ids FROM pipelines) AS p
"""
SEED_LOGS = """
INSERT INTO run_logs (run_id, seq, ts, level, message)
SELECT $1, g, now(), (ARRAY['debug','info','warn','error'])[1 + g % 4], 'log line ' || g
FROM generate_series(1, $2) AS g
"""


async def seed_runs(dsn: str) -> str:
    """10,000 runs over the pipelines and 2,000 log lines on the newest; its id."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(SEED_RUNS, RUNS)
        run_id = await conn.fetchval("SELECT id FROM runs ORDER BY created_at DESC LIMIT 1")
        await conn.execute(SEED_LOGS, run_id, LOG_LINES)
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return str(run_id)


def _time(http: httpx.Client, path: str) -> list[float]:
    for _ in range(3):
        http.get(path).raise_for_status()
    times = []
    for _ in range(REQUESTS):
        start = time.perf_counter()
        http.get(path).raise_for_status()
        times.append(time.perf_counter() - start)
    return times


def seed_api(api: httpx.Client) -> None:
    """Pipelines (their files), and for the zone and triggers pages: a zone with files and a
    sample, a schedule and triggers on the pipeline the tab pages show."""
    for i in range(PIPELINES):
        api.post("/pipelines", json={"namespace": "default", "layer": "silver",
                                     "name": f"p{i:03d}", "description": f"pipeline {i}",
                                     "source": "SELECT 1 AS id"}).raise_for_status()
    api.post("/landing-zones", json={"name": "orders"}).raise_for_status()
    for i in range(ZONE_FILES):
        api.post("/landing-zones/default/orders/files",
                 files={"file": (f"orders_{i}.csv", b"id\n1\n", "text/csv")}).raise_for_status()
    api.post("/landing-zones/default/orders/samples",
             files={"file": ("sample.csv", b"id\n1\n", "text/csv")}).raise_for_status()
    p = "/pipelines/default/silver/p050"
    api.post("/schedules", json={"layer": "silver", "pipeline": "p050",
                                 "cron": "@hourly"}).raise_for_status()
    for body in ({"type": "landing_zone_upload", "config": {"namespace": "default",
                                                            "zone_name": "orders"}},
                 {"type": "pipeline_success", "config": {"namespace": "default",
                                                         "layer": "silver", "pipeline": "p049"}},
                 {"type": "webhook", "config": {}}):
        api.post(f"{p}/triggers", json=body).raise_for_status()


def pages(run_id: str) -> list[str]:
    p = "/pipelines/default/silver/p050"
    return ["/", "/pipelines", "/pipelines?search=p05", "/runs", "/runs?status=failed",
            f"/runs/{run_id}", p, *(f"{p}?tab={t}" for t in (
                "code", "preview", "quality", "settings", "triggers", "versions")),
            "/query", "/explorer", "/landing", "/landing/default/orders", "/lineage",
            "/settings", "/settings/retention", "/settings/plugins"]


def run(ctx: BenchContext) -> list[Result]:
    from rat.db.embedded import EmbeddedPostgres

    root = Path(tempfile.mkdtemp(prefix="rat-bm9-pg-", dir="/tmp"))
    pg = EmbeddedPostgres(root / "pg")
    dsn = pg.start()
    try:
        with ctx.server({"RAT_DATABASE_URL": dsn, "RAT_SCHEDULER_ENABLED": "false"}) as server, \
                server.client() as api:
            seed_api(api)
            run_id = asyncio.run(seed_runs(dsn))
            with httpx.Client(base_url=server.url, timeout=60,
                              headers={"Accept": "text/html"}) as http:
                floor = median(_time(http, "/static/favicon.svg"))
                results = []
                for path in pages(run_id):
                    times = _time(http, path)
                    p95 = percentile(times, 95)
                    results.append(Result("BM9", f"GET {path} p95"[:44], p95, "s", floor=floor,
                                          note=f"p50 {median(times) * 1000:.0f} ms "
                                               f"[{'target met' if p95 < TARGET_S else 'MISSED'}]"))
                return results
    finally:
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
