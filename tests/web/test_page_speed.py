"""Every main page renders in under 300 ms server-side with 100 pipelines and 10,000 runs.

The median of five requests per page is asserted (the client is on loopback, so this is the
server's time plus a millisecond); BM9 reports p50/p95 with a same-run floor. Measured medians
on the 2-core dev box were below 80 ms, so the bound has ~4x headroom for a noisy host.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator

import httpx
import pytest
from bench.bm9_ui_pages import pages, seed_api, seed_runs

from tests.conftest import RatServer, start_server

pytestmark = pytest.mark.slow
LIMIT_S = 0.300


@pytest.fixture(scope="module")
def seeded(pg_base: str, template_db: str) -> Iterator[tuple[RatServer, str]]:
    server = start_server(pg_base, template_db, "local", None)
    try:
        with server.client() as api:
            seed_api(api)
        yield server, asyncio.run(seed_runs(server.dsn))
    finally:
        server.stop()


def test_main_pages_render_under_300_ms(seeded: tuple[RatServer, str]) -> None:
    server, run_id = seeded
    slow = {}
    with httpx.Client(base_url=server.url, headers={"Accept": "text/html"}, timeout=30) as http:
        for path in pages(run_id):
            http.get(path).raise_for_status()  # warm caches (lineage, templates)
            times = []
            for _ in range(5):
                start = time.perf_counter()
                http.get(path).raise_for_status()
                times.append(time.perf_counter() - start)
            if statistics.median(times) >= LIMIT_S:
                slow[path] = round(statistics.median(times) * 1000)
    assert not slow, f"median ms over the limit: {slow}"
