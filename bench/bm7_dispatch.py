"""BM7: enqueue 1,000 no-op runs at once (2 run workers) and measure what the queue costs.

Figures, from the runs table (Postgres timestamps, so no client-side polling error):
- enqueue: wall time of 1,000 `POST /runs`;
- start latency when a slot is free: from the moment a worker slot frees (or the run is created,
  whichever is later) to the run's `started_at`; target p99 <= 2 s, ambitious 0.25 s;
- queue wait per run against the floor: a raw `UPDATE … FOR UPDATE SKIP LOCKED` claim loop (claim
  and finish, two workers) on the same Postgres; and that wait as a share of a no-op run's time
  (target <= 10 %, ambitious 5 %);
- no-op run time and drain throughput, for context (the part outside the worker's phases is
  parent-side catalog work and bookkeeping).
"""

from __future__ import annotations

import asyncio
import heapq
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import asyncpg
import httpx

from bench.harness import BenchContext, Result, median, percentile
from rat.db.embedded import EmbeddedPostgres

RUNS = 1000
PIPELINES = 50  # one running run per pipeline: spread the queue so both workers stay busy
SQL = "SELECT 1 AS id WHERE false"  # a no-op: zero rows into an append-only table
CONFIG = "merge_strategy: append_only\n"


def _setup(client: httpx.Client) -> list[str]:
    names = [f"noop{i}" for i in range(PIPELINES)]
    for name in names:
        client.post("/pipelines", json={"namespace": "default", "layer": "bronze", "name": name,
                                        "source": SQL}).raise_for_status()
        client.put(f"/files/default/pipelines/bronze/{name}/config.yaml",
                   json={"content": CONFIG}).raise_for_status()
    return names


def _enqueue(server_url: str, names: list[str]) -> float:
    def post(i: int) -> None:
        with httpx.Client(base_url=f"{server_url}/api/v1", timeout=60) as c:
            c.post("/runs", json={"namespace": "default", "layer": "bronze",
                                  "pipeline": names[i % len(names)]}).raise_for_status()

    start = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(RUNS)))
    return time.perf_counter() - start


async def _rows(dsn: str) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        while await conn.fetchval("SELECT count(*) FROM runs WHERE status IN "
                                  "('pending', 'running')"):
            await asyncio.sleep(0.5)
        rows = await conn.fetch("SELECT created_at, started_at, finished_at, status, "
                                "phase_profiles FROM runs ORDER BY started_at")
        return [dict(r) for r in rows]
    finally:
        await conn.close()


def start_latencies(rows: list[dict[str, Any]], slots: int) -> list[float]:
    """Per run: seconds from "a slot is free and the run exists" to the run's start."""
    free: list[float] = [0.0] * slots  # times at which slots became free (min-heap)
    running: list[float] = []          # finish times of runs holding a slot
    out = []
    for row in rows:
        start, finish = row["started_at"].timestamp(), row["finished_at"].timestamp()
        while running and running[0] <= start:
            heapq.heappush(free, heapq.heappop(running))
        slot_free = heapq.heappop(free) if free else start
        out.append(max(0.0, start - max(slot_free, row["created_at"].timestamp())))
        heapq.heappush(running, finish)
    return out


def _engine_seconds(row: dict[str, Any]) -> float:
    import json

    phases = row["phase_profiles"]
    phases = json.loads(phases) if isinstance(phases, str) else phases
    return sum(p.get("duration_ms", 0) for p in phases) / 1000


async def _claim_floor(dsn: str, jobs: int = 5000) -> float:
    """Jobs/s of a bare SKIP LOCKED claim loop (claim + finish, two workers) on a scratch table."""
    conn = await asyncpg.connect(dsn)
    await conn.execute("DROP TABLE IF EXISTS bench_jobs; CREATE TABLE bench_jobs "
                       "(id serial PRIMARY KEY, status text NOT NULL DEFAULT 'pending', "
                       "created_at timestamptz NOT NULL DEFAULT clock_timestamp())")
    await conn.execute(f"INSERT INTO bench_jobs (status) SELECT 'pending' FROM generate_series(1, {jobs})")
    await conn.close()

    async def worker() -> None:
        c = await asyncpg.connect(dsn)
        try:
            while True:
                job = await c.fetchval(
                    "UPDATE bench_jobs SET status = 'running' WHERE id = (SELECT id FROM "
                    "bench_jobs WHERE status = 'pending' ORDER BY created_at LIMIT 1 "
                    "FOR UPDATE SKIP LOCKED) RETURNING id")
                if job is None:
                    return
                await c.execute("UPDATE bench_jobs SET status = 'done' WHERE id = $1", job)
        finally:
            await c.close()

    start = time.perf_counter()
    await asyncio.gather(worker(), worker())
    elapsed = time.perf_counter() - start
    conn = await asyncpg.connect(dsn)
    await conn.execute("DROP TABLE bench_jobs")
    await conn.close()
    return jobs / elapsed


def run(ctx: BenchContext) -> list[Result]:
    with ctx.server({"RAT_WORKERS": "2", "RAT_SCHEDULER_ENABLED": "false"}) as server, \
            server.client() as client:
        names = _setup(client)
        warm = client.post("/runs", json={"namespace": "default", "layer": "bronze",
                                          "pipeline": names[0]}).json()["run_id"]
        from bench.harness import wait_run

        if wait_run(client, warm)["status"] != "success":
            raise RuntimeError("BM7 warm-up run failed")
        dsn = EmbeddedPostgres(server.data_dir / "pg").dsn
        asyncio.run(_delete_runs(dsn))
        enqueue = _enqueue(server.url, names)
        rows = asyncio.run(_rows(dsn))
        floor_rate = asyncio.run(_claim_floor(dsn))
    failed = [r for r in rows if r["status"] != "success"]
    if failed:
        raise RuntimeError(f"BM7: {len(failed)} runs did not succeed")
    return _results(rows, enqueue, floor_rate)


async def _delete_runs(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    await conn.execute("DELETE FROM runs")
    await conn.close()


def _results(rows: list[dict[str, Any]], enqueue: float, floor_rate: float) -> list[Result]:
    starts = start_latencies(rows, slots=2)
    durations = [(r["finished_at"] - r["started_at"]).total_seconds() for r in rows]
    outside = [max(0.0, d - _engine_seconds(r)) for d, r in zip(durations, rows, strict=True)]
    first: datetime = min(r["created_at"] for r in rows)
    last: datetime = max(r["finished_at"] for r in rows)
    mean_start = sum(starts) / len(starts)
    return [
        Result("BM7", "enqueue: POST /runs, per run (8 clients)", enqueue / RUNS * 1000, "ms"),
        Result("BM7", "start latency p50 (slot free -> started)", median(starts), "s"),
        Result("BM7", "start latency p99 (target 2 s, ambitious 0.25 s)",
               percentile(starts, 99), "s", target=2.0, ambitious=0.25),
        Result("BM7", "queue wait per run (floor: raw claim+finish)", mean_start * 1000, "ms",
               floor=1000 / floor_rate),
        Result("BM7", "queue wait share of run time (<= 10%)", mean_start / median(durations),
               "", target=0.10, ambitious=0.05),
        Result("BM7", "run time p50 (no-op run, claim -> success)", median(durations), "s",
               note=f"[outside the worker's phases: p50 {median(outside) * 1000:.0f} ms]"),
        Result("BM7", "drain throughput (runs/s, 2 workers)",
               len(rows) / (last - first).total_seconds(), "/s"),
    ]
