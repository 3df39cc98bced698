"""Schedules: CRUD with validated cron, and the leader's tick that turns due schedules into runs.

A tick, per due schedule, in one transaction:
1. Lock the schedule row (SKIP LOCKED: a concurrent tick elsewhere simply passes it by).
2. Skip-if-active: a pipeline with a pending or running run gets no new run (`schedule_skipped`).
3. Else insert a run for `(schedule_id, scheduled_for = next_run_at)`; the unique index makes a
   second insert for the same slot impossible, even from another process.
4. `next_run_at` = the next occurrence after *now*: after downtime exactly one run catches up.
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

import asyncpg

from rat.core.errors import NotFound
from rat.core.events import EventBus
from rat.core.ids import layer as check_layer
from rat.core.ids import parse_uuid
from rat.core.timefmt import utcnow
from rat.db.database import Conn, Database
from rat.db.queries import load_queries
from rat.pipelines.service import PipelinesService, check_page
from rat.plugins.protocols import ReadScope
from rat.runs.service import RunsService
from rat.schedules.cron import check_cron, check_timezone, next_after
from rat.schedules.models import Schedule, ScheduleCreate, SchedulePage, ScheduleUpdate

log = logging.getLogger(__name__)
Q = load_queries("rat.schedules")
TICK_BATCH = 500
OVERDUE_RETRY_SECONDS = 1.0


def _schedule(row: dict[str, Any]) -> Schedule:
    return Schedule(**{k: v for k, v in row.items() if k != "total"})


class SchedulesService:
    def __init__(self, db: Database, pipelines: PipelinesService, runs: RunsService,
                 events: EventBus, *, tick_seconds: float,
                 poke: Callable[[], None] = lambda: None) -> None:
        self.db = db
        self.pipelines = pipelines
        self.runs = runs
        self.events = events
        self.tick_seconds = tick_seconds
        self.poke = poke
        self._next_due: datetime | None = None
        self._tick_started: datetime | None = None

    async def list(self, *, namespace: str | None = None, layer: str | None = None,
                   pipeline: str | None = None, enabled: bool | None = None, limit: int = 50,
                   offset: int = 0, scope: ReadScope | None = None) -> SchedulePage:
        """A page of schedules; `scope` (from the authorizer) hides unreadable pipelines'."""
        check_page(limit, offset)
        if layer is not None:
            check_layer(layer)
        args = (namespace, layer, pipeline, enabled, *ReadScope.pipeline_args(scope))
        rows = await self.db.many(Q["list_schedules"], *args, limit, offset)
        total = int(rows[0]["total"]) if rows else int(
            await self.db.val(Q["count_schedules"], *args))
        return SchedulePage(schedules=[_schedule(r) for r in rows], total=total)

    async def get(self, schedule_id: str | uuid.UUID) -> Schedule:
        sid = schedule_id if isinstance(schedule_id, uuid.UUID) else \
            parse_uuid(schedule_id, "id")
        row = await self.db.one(Q["get_schedule"], sid)
        if row is None:
            raise NotFound("schedule not found")
        return _schedule(row)

    async def create(self, body: ScheduleCreate) -> Schedule:
        cron = check_cron(body.cron)
        timezone = check_timezone(body.timezone)
        pipeline = await self.pipelines.get(body.namespace, body.layer, body.pipeline)
        next_run = next_after(cron, timezone, utcnow()) if body.enabled else None
        schedule_id = uuid.uuid4()
        await self.db.exec(Q["insert_schedule"], schedule_id, pipeline.id, cron, timezone,
                           body.enabled, next_run)
        self._expect(next_run)
        return await self.get(schedule_id)

    async def update(self, schedule_id: str, body: ScheduleUpdate) -> Schedule:
        """Validate the new values; `next_run_at` is recomputed from now (NULL when disabled)."""
        current = await self.get(schedule_id)
        cron = check_cron(body.cron) if body.cron is not None else current.cron
        timezone = check_timezone(body.timezone) if body.timezone is not None \
            else current.timezone
        enabled = current.enabled if body.enabled is None else body.enabled
        next_run = next_after(cron, timezone, utcnow()) if enabled else None
        await self.db.exec(Q["update_schedule"], current.id, cron, timezone, enabled, next_run)
        self._expect(next_run)
        return await self.get(current.id)

    async def delete(self, schedule_id: str) -> None:
        if not await self.db.execrows(Q["delete_schedule"], parse_uuid(schedule_id, "id")):
            raise NotFound("schedule not found")

    def _expect(self, next_run: datetime | None) -> None:
        """A new occurrence may be sooner than the one the scheduler sleeps towards: wake it."""
        if next_run is not None and (self._next_due is None or next_run < self._next_due):
            self._next_due = next_run
            self.poke()

    def interval(self) -> float:
        """Seconds between the last tick's start and the next one: the tick, or sooner if due."""
        if self._next_due is None or self._tick_started is None:
            return self.tick_seconds
        until = (self._next_due - self._tick_started).total_seconds()
        # Still overdue after a tick means a schedule failed to fire: retry, but not in a spin.
        return min(self.tick_seconds, until if until > 0 else OVERDUE_RETRY_SECONDS)

    async def tick(self) -> int:
        """Fire every due schedule once; return how many runs were created. Leader duty."""
        self._tick_started = utcnow()
        fired = 0
        for row in await self.db.many(Q["due_schedules"], TICK_BATCH):
            try:
                fired += await self._fire(row["id"])
            except Exception:
                log.exception("schedule %s failed to fire", row["id"])
        self._next_due = await self.db.val(Q["earliest_schedule"])
        return fired

    async def _fire(self, schedule_id: uuid.UUID) -> int:
        events: builtins.list[tuple[str, dict[str, Any]]] = []
        async with self.db.transaction() as conn:
            row = await self.db.one(Q["lock_due_schedule"], schedule_id, conn=conn)
            if row is None:
                return 0
            next_run = next_after(row["cron_expr"], row["timezone"], utcnow())
            run_id = await self._enqueue(conn, row, events)
            await self.db.exec(Q["schedule_fired"], schedule_id, run_id, next_run, conn=conn)
        for name, data in events:
            await self.events.emit(name, **data)
        return 0 if run_id is None else 1

    async def _enqueue(self, conn: Conn, row: dict[str, Any],
                       events: builtins.list[tuple[str, dict[str, Any]]]) -> uuid.UUID | None:
        info = {"schedule_id": str(row["id"]), "pipeline_id": str(row["pipeline_id"]),
                "scheduled_for": row["next_run_at"].isoformat()}
        await self.db.exec(Q["lock_pipeline_queue"], row["pipeline_id"], conn=conn)
        if await self.db.val(Q["active_run"], row["pipeline_id"], conn=conn):
            log.info("schedule %s skipped: pipeline %s already has an active run", row["id"],
                     row["pipeline_id"])
            events.append(("schedule_skipped", info))
            return None
        pipeline = await self.pipelines.get_by_id(row["pipeline_id"], conn=conn)
        try:
            async with conn.transaction():  # a savepoint: a duplicate slot must not abort the tick
                run_id = await self.runs.enqueue(
                    pipeline, f"schedule:{row['cron_expr']}", conn=conn,
                    schedule_id=row["id"], scheduled_for=row["next_run_at"])
        except asyncpg.UniqueViolationError:
            return None  # this occurrence already has its run
        events.append(("schedule_fired", {**info, "run_id": str(run_id)}))
        return run_id
