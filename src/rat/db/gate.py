"""A first-come, first-served gate in front of the connection pool.

asyncpg's pool hands a released connection to whichever task asks next; a waiter that was woken
but had its connection taken by a newcomer goes back to the end of the line. Under overload
(1,000 clients on 10 connections) that turns a 1-2 s average wait into a tail beyond the 5 s
acquire deadline, i.e. 503s. This gate passes each freed slot to the longest waiter instead.
"""

from __future__ import annotations

import asyncio
from collections import deque


class FairGate:
    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, within: float) -> None:
        """Take a slot within `within` seconds (TimeoutError otherwise)."""
        if self._free and not self._waiters:
            self._free -= 1
            return
        slot: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(slot)
        try:
            await asyncio.wait_for(slot, within)
        except BaseException:
            # Handed a slot just as we timed out or were cancelled: pass it on, never leak it.
            if slot.done() and not slot.cancelled():
                self.release()
            else:
                slot.cancel()
            raise

    def release(self) -> None:
        while self._waiters:
            slot = self._waiters.popleft()
            if not slot.done():
                slot.set_result(None)
                return
        self._free += 1
