"""The parent's side of the worker pipe when the worker dies in the middle of a conversation."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from rat.runtime.workers import WorkerDied, WorkerProcess

MODULES = ("tests.integration.worker_jobs",)


async def test_a_job_with_requests_answers() -> None:
    worker = WorkerProcess("test", MODULES)
    await worker.start()
    try:
        async def echo(method: str, body: Any) -> Any:
            return f"{method}:{body}"

        assert await worker.call("ask", b"hi", rpc=echo) == b"echo:hi"
    finally:
        await worker.stop()


async def test_a_worker_killed_while_its_request_is_answered_is_a_dead_worker() -> None:
    """SIGKILL lands while the parent serves an RPC: the reply hits a broken pipe. That must
    surface as WorkerDied (the run fails as "worker process died" and may retry), not escape as
    BrokenPipeError (an internal error that skips the retry)."""
    worker = WorkerProcess("test", MODULES)
    await worker.start()
    assert worker.pid is not None

    async def kill_then_answer(method: str, body: Any) -> Any:
        os.kill(worker.pid or 0, signal.SIGKILL)
        await _wait_dead(worker)
        return "too late"

    with pytest.raises(WorkerDied) as died:
        await worker.call("ask", b"hi", rpc=kill_then_answer)
    assert died.value.returncode == -signal.SIGKILL


async def _wait_dead(worker: WorkerProcess) -> None:
    for _ in range(200):
        if not worker.alive:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the worker survived SIGKILL")
