"""BM1: POST /runs to `success` for a one-row SQL pipeline, against bare DuckDB running the SQL.

Floor: a fresh in-process DuckDB executing the same SELECT (what the engine must do at minimum).
Figures: p50 and p95 over 20 runs after one warm-up run; targets p95 <= 1.5 s (ambitious 0.5 s),
with the pipeline sandbox on; and the sandbox's cost: the same runs with RAT_SANDBOX=off as floor.
"""

from __future__ import annotations

import time

from bench.harness import BenchContext, Result, median, percentile, wait_run

SQL = "SELECT 1 AS id, 'one' AS label, now() AS at"
RUNS = 20


def _bare_duckdb() -> float:
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect()
    con.execute(SQL).fetchall()
    con.close()
    return time.perf_counter() - start


def _latencies(ctx: BenchContext, env: dict[str, str]) -> list[float]:
    with ctx.server(env) as server, server.client() as client:
        client.post("/pipelines", json={"namespace": "default", "layer": "bronze", "name": "bm1",
                                        "source": SQL}).raise_for_status()
        body = {"namespace": "default", "layer": "bronze", "pipeline": "bm1"}
        latencies = []
        for i in range(RUNS + 1):
            start = time.perf_counter()
            run_id = client.post("/runs", json=body).json()["run_id"]
            done = wait_run(client, run_id)
            status = done["status"]
            elapsed = time.perf_counter() - start
            if status != "success":
                raise RuntimeError(f"BM1 run {i} ended {status}: {done.get('error')}")
            if i:
                latencies.append(elapsed)
    return latencies


def run(ctx: BenchContext) -> list[Result]:
    latencies = _latencies(ctx, {"RAT_SANDBOX": "on"})
    unboxed = _latencies(ctx, {"RAT_SANDBOX": "off"})
    floors = [_bare_duckdb() for _ in range(RUNS)]
    floor = median(floors)
    return [
        Result("BM1", "run latency p50 (POST /runs -> success, sandbox on)", median(latencies),
               "s", floor=floor),
        Result("BM1", "run latency p95 (target 1.5 s, ambitious 0.5 s)",
               percentile(latencies, 95), "s", floor=floor, note=_verdict(percentile(latencies, 95))),
        Result("BM1", "sandbox cost per run (p50 on vs off; floor = p50 off)", median(latencies),
               "s", floor=median(unboxed)),
    ]


def _verdict(p95: float) -> str:
    if p95 <= 0.5:
        return "[ambitious met]"
    return "[target met]" if p95 <= 1.5 else "[MISSED target]"
