"""The fence between backups and file deletions, on a real Postgres."""

from __future__ import annotations

import asyncio

from rat.db.database import Database
from rat.ops.fence import backup_fence, deletion_window


async def test_deletions_pause_while_a_backup_holds_the_fence(db: Database) -> None:
    async with deletion_window(db) as allowed:
        assert allowed
    async with backup_fence(db):
        async with deletion_window(db) as allowed:
            assert not allowed
        async with backup_fence(db):  # a second backup may run alongside
            pass
    async with deletion_window(db) as allowed:
        assert allowed


async def test_backup_waits_for_a_deletion_window_in_progress(db: Database) -> None:
    entered = asyncio.Event()

    async def backup() -> None:
        async with backup_fence(db):
            entered.set()

    async with deletion_window(db) as allowed:
        assert allowed
        task = asyncio.create_task(backup())
        await asyncio.sleep(0.3)
        assert not entered.is_set()
    await asyncio.wait_for(task, 5)
    assert entered.is_set()
