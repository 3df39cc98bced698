"""BM6: a small JSON endpoint under load, against a bare Litestar endpoint in the same run.

Workload: `GET /api/v1/pipelines/default/silver/{name}` (about 1 KB of JSON read from Postgres)
with 1,000 pipelines in the database, each connection asking for its own pipeline.
Floor: `bench.bare_app`, a bare Litestar app returning a fixed object of the same shape under the
same uvicorn settings. Load: `bench.loadgen` (keep-alive connections in a closed loop).

Figures and targets (reliability-performance.md, BM6):
- c=64: RAT throughput >= 0.4x the bare app's (reported as cost per request, ratio <= 2.5;
  ambitious >= 0.6x, i.e. <= 1.67) and p99 <= 100 ms (ambitious 50 ms).
- c=1000: zero 5xx (and p99, ambitious <= 1 s).
`BENCH_SECONDS` (default 15) sets each measured phase; every phase has a 2 s warm-up.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.harness import ROOT, BenchContext, Result, free_port
from bench.loadgen import LoadStats, run_load

PIPELINES = 1000
SECONDS = float(os.environ.get("BENCH_SECONDS", "15"))


def _raise_fd_limit() -> None:
    """1,000 client connections plus the server's: lift the soft limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _bare_floor() -> LoadStats:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bench.bare_app", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/item", timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        return run_load("127.0.0.1", port, lambda _i: "/item", concurrency=64, seconds=SECONDS)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _seed(client: httpx.Client) -> None:
    def create(i: int) -> None:
        client.post("/pipelines", json={"namespace": "default", "layer": "silver",
                                        "name": f"p{i:04d}", "description": "bm6 " * 30}
                    ).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(PIPELINES)))


def run(ctx: BenchContext) -> list[Result]:
    _raise_fd_limit()
    floor = _bare_floor()
    print(f"   bare Litestar: {floor.summary()}", flush=True)
    with ctx.server() as server, server.client() as client:
        _seed(client)
        path = "/api/v1/pipelines/default/silver/p{:04d}"
        one = client.get(path.format(7).removeprefix("/api/v1"))
        one.raise_for_status()
        print(f"   response: {len(one.content)} bytes", flush=True)
        c64 = run_load("127.0.0.1", server.port, lambda i: path.format(i % PIPELINES),
                       concurrency=64, seconds=SECONDS)
        print(f"   RAT: {c64.summary()}", flush=True)
        c1000 = run_load("127.0.0.1", server.port, lambda i: path.format(i % PIPELINES),
                         concurrency=1000, seconds=SECONDS, warmup=3.0)
        print(f"   RAT: {c1000.summary()}", flush=True)
    per_request_us = 1e6 / c64.rps if c64.rps else float("inf")
    return [
        Result("BM6", "bare Litestar req/s at c=64 (floor)", floor.rps, "/s"),
        Result("BM6", "RAT req/s at c=64", c64.rps, "/s",
               note=f"[{c64.rps / floor.rps:.2f}x of bare; target >= 0.4x, ambitious 0.6x]"),
        Result("BM6", "cost per request at c=64 (us, vs bare)", per_request_us, "us",
               floor=1e6 / floor.rps, target=2.5, ambitious=1 / 0.6),
        Result("BM6", "p99 latency at c=64 (target 100 ms)", c64.pct_ms(99), "ms",
               target=100, ambitious=50),
        Result("BM6", "5xx responses at c=1000 (target 0)", c1000.server_errors, "",
               target=0, note=f"[{c1000.requests} requests, {c1000.rps:.0f} req/s, "
                              f"errors {dict(c1000.errors)}]"),
        Result("BM6", "p99 latency at c=1000 (ambitious 1 s)", c1000.pct_ms(99), "ms",
               target=float("inf"), ambitious=1000),
    ]
