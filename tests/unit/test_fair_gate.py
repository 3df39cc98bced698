"""The connection gate serves waiters in arrival order and never leaks a slot."""

from __future__ import annotations

import asyncio

import pytest

from rat.db.gate import FairGate


async def test_freed_slots_go_to_the_longest_waiter() -> None:
    gate = FairGate(1)
    await gate.acquire(1)
    order: list[int] = []

    async def wait(i: int) -> None:
        await gate.acquire(5)
        order.append(i)
        await asyncio.sleep(0)
        gate.release()

    waiters = [asyncio.create_task(wait(i)) for i in range(5)]
    await asyncio.sleep(0.01)
    gate.release()
    # A newcomer arriving while slots are being handed over queues behind the waiters.
    late = asyncio.create_task(wait(99))
    await asyncio.gather(*waiters, late)
    assert order == [0, 1, 2, 3, 4, 99]


async def test_timeout_and_cancel_do_not_leak_slots() -> None:
    gate = FairGate(1)
    await gate.acquire(1)
    with pytest.raises(TimeoutError):
        await gate.acquire(0.05)
    cancelled = asyncio.create_task(gate.acquire(5))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    gate.release()
    await asyncio.wait_for(gate.acquire(1), 1)  # the one slot is free again
    gate.release()
    await gate.acquire(0.01)
