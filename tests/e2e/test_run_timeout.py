"""The stuck-run timeout is enforced by the server running the run, not only by the hourly reaper."""

from __future__ import annotations

import time

import httpx

from tests.conftest import unique, wait_run
from tests.e2e.wap_client import PipelineClient, wait_phase

SPIN = "while True:\n    pass\n"


def test_a_spinning_run_fails_within_a_minute_of_its_timeout(api: httpx.Client) -> None:
    p = PipelineClient(api, "silver", unique("spin")).create(SPIN, "python")
    resp = api.put(f"{p.base}/retention", json={"stuck_run_timeout_minutes": 1})
    assert resp.status_code == 204, resp.text
    started = time.monotonic()
    run_id = p.start()
    wait_phase(api, run_id, ("execute",))
    run = wait_run(api, run_id, timeout=150)
    took = time.monotonic() - started
    assert run["status"] == "failed", run
    assert run["error"] == "run timed out after 1 minute (stuck_run_timeout_minutes)", run
    assert 55 <= took <= 60 + 30, took
    assert run["attempt"] == 1  # a timeout is final, not retried
    messages = [r["message"] for r in api.get(f"/runs/{run_id}/logs").json()["logs"]]
    assert any("timed out" in m and "stopping the worker" in m for m in messages), messages
