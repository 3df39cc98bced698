"""Eight first runs in one new layer at once, over HTTP against a real `rat serve` (issue 16.4).

Every run finds the layer's Iceberg namespace missing and creates it; they all succeed.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RatServer, start_server, unique, wait_run
from tests.e2e.wap_client import PipelineClient

RUNS = 8


@pytest.fixture
def wide_server(pg_base: str, template_db: str) -> Iterator[RatServer]:
    """A fresh server (no layer namespace exists yet) that runs all eight at the same time."""
    server = start_server(pg_base, template_db, "local", None, {"RAT_WORKERS": str(RUNS)})
    try:
        yield server
    finally:
        server.stop()


def test_eight_first_runs_in_one_new_layer_all_succeed(wide_server: RatServer) -> None:
    with wide_server.client() as api:
        pipelines = [PipelineClient(api, "bronze", unique("race")).create(
            f"SELECT {i} AS id, 'p{i}' AS label") for i in range(RUNS)]
        run_ids = [p.start() for p in pipelines]
        runs = [wait_run(api, run_id, timeout=180) for run_id in run_ids]
        assert [r["status"] for r in runs] == ["success"] * RUNS, [r.get("error") for r in runs]
        for i, p in enumerate(pipelines):
            assert p.rows() == [{"id": i, "label": f"p{i}"}]
