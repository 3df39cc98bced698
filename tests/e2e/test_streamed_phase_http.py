"""Over HTTP: while a full_refresh query streams into the table the run shows phase `execute`,
and the run's phase profiles put the query time under `execute` (issue 16.3)."""

from __future__ import annotations

import time

import httpx

from tests.conftest import unique
from tests.e2e.wap_client import PipelineClient

# A few seconds of query, one row out.
SLOW = ("SELECT sum(a.range * b.range) AS s FROM range(15000) a, range(15000) b "
        "WHERE (a.range + b.range) % 7 = 3")


def test_streamed_query_runs_in_the_execute_phase(api: httpx.Client) -> None:
    p = PipelineClient(api, "silver", unique("slowfr")).create(SLOW)
    run_id = p.start()
    seen: list[str] = []
    while True:
        run = api.get(f"/runs/{run_id}").json()
        if run["status"] not in ("pending", "running"):
            break
        if run["status"] == "running":
            seen.append(run["phase"])
        time.sleep(0.05)
    assert run["status"] == "success", run
    assert seen.count("execute") > 2 * seen.count("write"), seen
    profiles = {ph["name"]: ph for ph in api.get(f"/runs/{run_id}").json()["phase_profiles"]}
    execute = profiles["execute"]
    assert execute["metadata"]["query_ms"] > 500
    assert execute["duration_ms"] >= execute["metadata"]["query_ms"]
    assert profiles["write"]["duration_ms"] < execute["duration_ms"]
