"""Platform-state figures that /metrics reports (read at scrape time)."""

from __future__ import annotations

import asyncio

import msgspec

from rat.db.database import Database
from rat.db.queries import load_queries

Q = load_queries("rat.ops")
RUN_STATUSES = ("pending", "running", "success", "failed", "cancelled")


class StateStats(msgspec.Struct, frozen=True, kw_only=True):
    runs_by_status: dict[str, int]
    pending: int
    retry_wait: int
    oldest_pending_seconds: float
    scheduler_lag_seconds: float


async def state_stats(db: Database) -> StateStats:
    counts, queue, lag = await asyncio.gather(
        db.many(Q["run_status_counts"]), db.one(Q["queue_state"]), db.val(Q["scheduler_lag"]))
    by_status = dict.fromkeys(RUN_STATUSES, 0) | {r["status"]: int(r["n"]) for r in counts}
    queue = queue or {}
    return StateStats(runs_by_status=by_status, pending=int(queue.get("pending") or 0),
                      retry_wait=int(queue.get("retry_wait") or 0),
                      oldest_pending_seconds=float(queue.get("oldest_pending_seconds") or 0),
                      scheduler_lag_seconds=float(lag or 0))
