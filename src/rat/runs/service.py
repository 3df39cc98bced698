"""Run use cases: enqueue, read, list, logs, cancel. Execution lives in rat.runtime.dispatcher."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from rat.core.errors import FailedPrecondition, Invalid, NotFound
from rat.core.events import EventBus
from rat.core.ids import parse_uuid
from rat.core.timefmt import parse_rfc3339
from rat.db.database import Conn, Database
from rat.db.queries import load_queries
from rat.pipelines.models import Pipeline
from rat.pipelines.service import PipelinesService, check_page, check_sort
from rat.plugins.protocols import ReadScope
from rat.runs.models import (
    LOG_LEVELS,
    RunCancelled,
    RunCreate,
    RunCreated,
    RunDetail,
    RunLog,
    RunLogs,
    RunPage,
    detail_from_row,
    run_from_row,
)

Q = load_queries("rat.runs")
SORTS = ("created_at", "started_at", "finished_at", "duration_ms", "status")
STATUSES = ("pending", "running", "success", "failed", "cancelled")
MAX_LOG_PAGE = 10_000


def check_trigger_label(label: str) -> str:
    if not label or len(label) > 100 or not label.isprintable():
        raise Invalid("trigger must be 1 to 100 printable characters")
    return label


def _statuses(text: str | None) -> list[str] | None:
    if not text:
        return None
    items = [s.strip() for s in text.split(",") if s.strip()]
    for item in items:
        if item not in STATUSES:
            raise Invalid(f"status must be a comma list of {', '.join(STATUSES)}")
    return items


def _time(text: str | None, field: str) -> datetime | None:
    if not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise Invalid(f"{field} must be an RFC 3339 timestamp") from None


class RunsService:
    def __init__(self, db: Database, pipelines: PipelinesService, events: EventBus) -> None:
        self.db = db
        self.pipelines = pipelines
        self.events = events
        self.on_cancel: list[Callable[[uuid.UUID], None]] = []

    async def create(self, body: RunCreate, *, request_id: str | None = None) -> RunCreated:
        pipeline = await self.pipelines.get(body.namespace, body.layer, body.pipeline)
        run_id = await self.enqueue(pipeline, check_trigger_label(body.trigger),
                                    request_id=request_id)
        return RunCreated(run_id=run_id, status="pending")

    async def enqueue(self, pipeline: Pipeline, trigger: str, *,
                      conn: Conn | None = None, request_id: str | None = None,
                      schedule_id: uuid.UUID | None = None,
                      scheduled_for: datetime | None = None) -> uuid.UUID:
        """Insert a pending run of the pipeline's current version and wake the dispatcher."""
        run_id = uuid.uuid4()
        config = pipeline.config or {}
        max_attempts = 1 + int(config.get("max_retries") or 0)
        await self.db.one(Q["insert_run"], run_id, pipeline.id, pipeline.current_version,
                          trigger, schedule_id, scheduled_for, max_attempts, request_id,
                          conn=conn)
        await self.db.exec(Q["notify_runs"], str(run_id), conn=conn)
        await self.events.emit("run_created", run_id=str(run_id), pipeline_id=str(pipeline.id),
                               trigger=trigger)
        return run_id

    async def get(self, run_id: str | uuid.UUID) -> RunDetail:
        rid = run_id if isinstance(run_id, uuid.UUID) else parse_uuid(run_id, "runID")
        row = await self.db.one(Q["get_run"], rid)
        if row is None:
            raise NotFound("run not found")
        return detail_from_row(row)

    async def row(self, run_id: uuid.UUID) -> dict[str, Any] | None:
        return await self.db.one(Q["get_run"], run_id)

    async def list(self, *, namespace: str | None = None, layer: str | None = None,
                   pipeline: str | None = None, status: str | None = None,
                   trigger: str | None = None, started_after: str | None = None,
                   started_before: str | None = None, sort: str = "-created_at",
                   limit: int = 50, offset: int = 0,
                   pipeline_id: uuid.UUID | None = None,
                   scope: ReadScope | None = None) -> RunPage:
        """A page of runs; `scope` (from the authorizer) hides runs of unreadable pipelines."""
        check_page(limit, offset)
        check_sort(sort, SORTS)
        args = (namespace, layer, pipeline, _statuses(status), trigger,
                _time(started_after, "started_after"), _time(started_before, "started_before"))
        visible = ReadScope.pipeline_args(scope)
        rows = await self.db.many(Q["list_runs"], *args, limit, offset, sort, pipeline_id,
                                  *visible)
        total = int(rows[0]["total"]) if rows else int(
            await self.db.val(Q["count_runs"], *args, pipeline_id, *visible))
        return RunPage(runs=[run_from_row(r) for r in rows], total=total)

    async def logs(self, run_id: str, *, after_seq: int = 0, level: str | None = None,
                   limit: int = MAX_LOG_PAGE) -> RunLogs:
        run = await self.get(run_id)
        levels = self.levels_from(level)
        rows = await self.db.many(Q["list_logs"], run.id, after_seq, levels, limit, into=RunLog)
        return RunLogs(logs=rows, status=run.status)

    @staticmethod
    def levels_from(level: str | None) -> builtins.list[str]:
        if level is None or level == "":
            return list(LOG_LEVELS)
        level = "warn" if level == "warning" else level
        if level not in LOG_LEVELS:
            raise Invalid(f"level must be one of {', '.join(LOG_LEVELS)}")
        return list(LOG_LEVELS[LOG_LEVELS.index(level):])

    async def cancel(self, run_id: str) -> RunCancelled:
        """Cancel a pending or running run; the worker is killed and nothing is published."""
        run = await self.get(run_id)
        row = await self.db.one(Q["cancel_run"], run.id)
        if row is None:
            raise FailedPrecondition(f"run is {run.status} and cannot be cancelled")
        for callback in self.on_cancel:
            callback(run.id)
        await self.events.emit("run_cancelled", run_id=str(run.id), pipeline_id=str(run.pipeline_id))
        return RunCancelled(run_id=run.id)

    async def cancel_pipeline_runs(self, pipeline_id: uuid.UUID, reason: str) -> int:
        rows = await self.db.many(Q["cancel_pipeline_runs"], pipeline_id, reason)
        for row in rows:
            for callback in self.on_cancel:
                callback(row["id"])
        return len(rows)

    async def has_active_run(self, pipeline_id: uuid.UUID) -> bool:
        return bool(await self.db.val(Q["active_run_for_pipeline"], pipeline_id))
