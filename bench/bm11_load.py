"""BM11: GET /api/v1/pipelines (the list, ~50 items) with 500 and 1,000 keep-alive clients.

Issue 16 item 4: what one `rat serve` does when many clients hold connections open at once.
The rate limit is off (RAT_RATE_LIMIT_RPS=0, as in every bench server), so what is left is the
server's own capacity and its overload answer (503 busy). Load: `bench.loadgen`, each client a
closed loop on its own keep-alive connection; `BENCH_LOAD_SECONDS` (default 20) per level, after
a 3 s warm-up. Figures per level: req/s, p50, p99, 5xx (of which 503) and connection errors.
The target is zero 5xx other than 503 (a 503 busy is the designed answer to overload, and is
reported on its own). The 1-minute load average is printed with each level: the 2-core machine
is shared, so the figures are only comparable with it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import httpx

from bench.bm6_api_small_json import _raise_fd_limit
from bench.harness import BenchContext, Result
from bench.loadgen import LoadStats, run_load

PIPELINES = 50
LEVELS = (500, 1000)
SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "20"))
PATH = "/api/v1/pipelines"


def _seed(client: httpx.Client) -> None:
    def create(i: int) -> None:
        client.post("/pipelines", json={"namespace": "default", "layer": "silver",
                                        "name": f"p{i:03d}", "description": "bm11 " * 20}
                    ).raise_for_status()

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(create, range(PIPELINES)))


def _rows(stats: LoadStats, load: float) -> list[Result]:
    c = stats.concurrency
    busy = stats.statuses.get(503, 0)
    other_5xx = stats.server_errors - busy
    note = f"[load avg {load:.1f}]"
    return [
        Result("BM11", f"req/s at c={c}", stats.rps, "/s", note=note),
        Result("BM11", f"p50 latency at c={c}", stats.pct_ms(50), "ms"),
        Result("BM11", f"p99 latency at c={c}", stats.pct_ms(99), "ms"),
        Result("BM11", f"5xx other than 503 at c={c} (target 0)", other_5xx, "", target=0,
               note=f"[{stats.requests} requests, statuses {dict(stats.statuses)}]"),
        Result("BM11", f"503 busy at c={c}", busy, ""),
        Result("BM11", f"connection errors at c={c}", sum(stats.errors.values()), "",
               note=f"[{dict(stats.errors)}]"),
    ]


def run(ctx: BenchContext) -> list[Result]:
    _raise_fd_limit()
    results: list[Result] = []
    with ctx.server() as server, server.client() as client:
        _seed(client)
        one = client.get("/pipelines")
        one.raise_for_status()
        print(f"   response: {len(one.content)} bytes", flush=True)
        for level in LEVELS:
            load = os.getloadavg()[0]
            stats = run_load("127.0.0.1", server.port, lambda _i: PATH, concurrency=level,
                             seconds=SECONDS, warmup=3.0)
            print(f"   RAT: {stats.summary()} (load avg before {load:.1f})", flush=True)
            results.extend(_rows(stats, load))
    return results
