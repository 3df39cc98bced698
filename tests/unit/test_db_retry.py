"""Outage handling helpers: backoff, one log line per outage, giving up, quiet closes."""

from __future__ import annotations

import asyncio
import logging

import pytest

from rat.core.errors import Unavailable
from rat.db.retry import Backoff, Outage, close_quietly, is_transient, retrying

log = logging.getLogger("test.retry")


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(cap=1.0)
    assert [backoff.delay() for _ in range(4)] == [0.25, 0.5, 1.0, 1.0]
    backoff.reset()
    assert backoff.delay() == 0.25


def test_transient_errors_are_connection_trouble_not_bugs() -> None:
    assert is_transient(ConnectionRefusedError())
    assert is_transient(Unavailable("database unavailable"))
    assert not is_transient(ValueError("bad"))


def test_an_outage_logs_once_and_its_end_once(caplog: pytest.LogCaptureFixture) -> None:
    outage = Outage("lease renewal", log)
    with caplog.at_level(logging.INFO, logger="test.retry"):
        for _ in range(5):
            outage.failed(OSError("connection refused"))
        outage.recovered()
        outage.recovered()
    assert [r.levelname for r in caplog.records] == ["WARNING", "INFO"]


async def test_retrying_rides_out_transient_errors_then_gives_up_when_told() -> None:
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionResetError("server closed the connection")
        return "ok"

    assert await retrying(flaky, Outage("flaky", log)) == "ok"

    async def down() -> None:
        raise ConnectionRefusedError("down")

    with pytest.raises(ConnectionRefusedError):
        await retrying(down, Outage("down", log), give_up=lambda: True)

    async def bug() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        await retrying(bug, Outage("bug", log))


class _Connection:
    """Stands in for an asyncpg connection at close time (the race is not reproducible at will)."""

    def __init__(self, close_seconds: float = 0.0) -> None:
        self.close_seconds = close_seconds
        self.terminated = False

    async def close(self) -> None:
        if self.close_seconds:
            await asyncio.sleep(self.close_seconds)
        # What asyncpg does when the server drops the socket while close() waits for it.
        raise asyncio.CancelledError

    def terminate(self) -> None:
        self.terminated = True


async def test_close_quietly_swallows_a_stray_cancel_but_not_a_real_one() -> None:
    conn = _Connection()
    await close_quietly(conn)  # type: ignore[arg-type]
    assert conn.terminated

    slow = _Connection(close_seconds=10)
    task = asyncio.create_task(close_quietly(slow))  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slow.terminated
