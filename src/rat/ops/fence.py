"""The fence between a backup's storage copy and anything that deletes storage files.

A backup dumps Postgres first and copies storage second; the dump may reference files that a
deletion between the two steps would remove, leaving the backup with dangling references. So a
backup holds the *shared* side of a Postgres advisory lock from before the dump until the copy
ends, and file deleters (the reaper's orphan, snapshot, blob and landing purges) take the
*exclusive* side without waiting:

    async with deletion_window(db) as allowed:
        if not allowed:
            return 0  # a backup is copying storage; delete next time
        ...delete files...

The lock lives in the database, so it works across processes and hosts, and a backup that dies
releases it with its connection: nothing stale is ever left behind (unlike a flag or lock file).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from rat.db.database import Database
from rat.db.queries import load_queries

Q = load_queries("rat.ops")
# "rat_bkup" as an integer; distinct from the leader lock key.
BACKUP_FENCE_KEY = 0x7261745F626B7570


@asynccontextmanager
async def deletion_window(db: Database) -> AsyncIterator[bool]:
    """Yield True when files may be deleted now (no backup running); held until the block ends."""
    async with db.transaction() as conn:
        allowed = bool(await db.val(Q["fence_try_deletions"], BACKUP_FENCE_KEY, conn=conn))
        yield allowed


@asynccontextmanager
async def backup_fence(db: Database) -> AsyncIterator[None]:
    """Hold off deletions for the duration of a backup (waits for a running deletion window)."""
    async with db.connection() as conn:
        await db.exec(Q["fence_hold_backup"], BACKUP_FENCE_KEY, conn=conn)
        try:
            yield
        finally:
            await db.exec(Q["fence_release_backup"], BACKUP_FENCE_KEY, conn=conn)
