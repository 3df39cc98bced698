"""Firing triggers: one transaction per firing, coalescing into the pipeline's pending run.

A firing, with the trigger row locked:
1. Take the pipeline's queue lock (a transaction-scoped advisory lock), so two firings of the
   same pipeline decide "is there a pending run?" one after the other.
2. Compare-and-set `last_triggered_at` unless the trigger is cooling down (then nothing happens).
3. Join the pipeline's oldest pending run (locked, so no dispatcher claims it meanwhile), or
   insert a new one; record it as `last_run_id`.
Sources: landing uploads (inside the upload's own transaction), webhooks, run completions
(`pipeline_success`, `cron_dependency` checks) and the leader's tick (`cron`, `cron_dependency`).
"""

from __future__ import annotations

import hmac
import logging
import math
import uuid
from datetime import datetime
from fnmatch import fnmatchcase
from typing import Any

from rat.core.errors import Invalid, NotFound, RateLimited
from rat.core.events import Event, EventBus
from rat.core.timefmt import utcnow
from rat.db.database import Conn, Database
from rat.db.queries import load_queries
from rat.landing.models import LandingFile, LandingZone
from rat.pipelines.service import PipelinesService
from rat.runs.service import RunsService
from rat.schedules.cron import next_after
from rat.schedules.models import Fired, TriggerRow
from rat.schedules.triggers import token_hash

log = logging.getLogger(__name__)
Q = load_queries("rat.schedules")
MAX_TOKEN_CHARS = 256


def label(row: TriggerRow) -> str:
    """The run's `trigger` label (product §6.5)."""
    c = row.config
    if row.type in ("landing_zone_upload", "file_pattern"):
        detail = f"{c['namespace']}/{c['zone_name']}"
        detail += f":{c['pattern']}" if row.type == "file_pattern" else ""
    elif row.type == "pipeline_success":
        detail = f"{c['namespace']}/{c['layer']}/{c['pipeline']}"
    elif row.type == "webhook":
        detail = (row.token_hash or "")[:8]
    else:
        detail = c["cron_expr"]
    return f"trigger:{row.type}:{detail}"


def _row(row: dict[str, Any] | None) -> TriggerRow | None:
    return None if row is None else TriggerRow(**row)


class TriggerFiring:
    def __init__(self, db: Database, pipelines: PipelinesService, runs: RunsService,
                 events: EventBus) -> None:
        self.db = db
        self.pipelines = pipelines
        self.runs = runs
        self.events = events

    async def _fire_locked(self, conn: Conn, row: TriggerRow) -> Fired | None:
        """Steps 1 to 3 above; None when the trigger is cooling down."""
        await self.db.exec(Q["lock_pipeline_queue"], row.pipeline_id, conn=conn)
        if await self.db.one(Q["claim_firing"], row.id, conn=conn) is None:
            return None
        pending = await self.db.val(Q["pending_run"], row.pipeline_id, conn=conn)
        if pending is not None:
            fired = Fired(run_id=pending, coalesced=True)
        else:
            pipeline = await self.pipelines.get_by_id(row.pipeline_id, conn=conn)
            fired = Fired(run_id=await self.runs.enqueue(pipeline, label(row), conn=conn))
        await self.db.exec(Q["set_last_run"], row.id, fired.run_id, conn=conn)
        await self.events.emit("trigger_fired", trigger_id=str(row.id), type=row.type,
                               pipeline_id=str(row.pipeline_id), run_id=str(fired.run_id),
                               coalesced=fired.coalesced)
        return fired

    async def _fire(self, trigger_id: uuid.UUID) -> Fired | None:
        async with self.db.transaction() as conn:
            row = _row(await self.db.one(Q["lock_trigger"], trigger_id, conn=conn))
            return None if row is None else await self._fire_locked(conn, row)

    # sources -------------------------------------------------------------------------------

    async def on_file_added(self, conn: Conn, zone: LandingZone, file: LandingFile) -> None:
        """Landing hook, inside the upload's transaction: the file fires each trigger once."""
        for match in await self.db.many(Q["zone_triggers"], zone.namespace, zone.name, conn=conn):
            if match["type"] == "file_pattern" and \
                    not fnmatchcase(file.filename, match["config"]["pattern"]):
                continue
            row = _row(await self.db.one(Q["lock_trigger"], match["id"], conn=conn))
            if row is not None:
                await self._fire_locked(conn, row)

    async def webhook(self, token: str | None) -> Fired:
        """Fire the webhook trigger owning `token`: 404 unknown/disabled, 429 cooling down."""
        if not token:
            raise Invalid("webhook token missing: send X-Webhook-Token or "
                          "Authorization: Bearer <token>")
        if len(token) > MAX_TOKEN_CHARS:
            raise NotFound("webhook not found")
        digest = token_hash(token)
        found = await self.db.one(Q["trigger_by_token"], digest)
        if found is None or not hmac.compare_digest(str(found["token_hash"]), digest) \
                or not found["enabled"]:
            raise NotFound("webhook not found")
        async with self.db.transaction() as conn:
            row = _row(await self.db.one(Q["lock_trigger"], found["id"], conn=conn))
            if row is None:
                raise NotFound("webhook not found")
            fired = await self._fire_locked(conn, row)
            if fired is None:
                left = float(await self.db.val(Q["cooldown_left"], row.id, conn=conn) or 1)
                raise RateLimited("webhook is cooling down", retry_after=max(1, math.ceil(left)))
        return fired

    async def on_run_completed(self, event: Event) -> None:
        """A success fires `pipeline_success` triggers and re-checks armed `cron_dependency` ones."""
        data = event.data
        if data.get("status") != "success":
            return
        ns, layer, name = data["namespace"], data["layer"], data["name"]
        for row in await self.db.many(Q["success_triggers"], ns, layer, name):
            await self._fire(row["id"])
        for row in await self.db.many(Q["dependent_triggers"], f"{ns}.{layer}.{name}"):
            await self._check_dependencies(row["id"])

    # the leader's tick ---------------------------------------------------------------------

    async def tick(self) -> int:
        """Fire due `cron` triggers, arm and check `cron_dependency` ones. Leader duty."""
        fired = 0
        now = utcnow()
        for row in await self.db.many(Q["clock_triggers"]):
            try:
                fired += await self._tick_one(row, now)
            except Exception:
                log.exception("trigger %s failed to evaluate", row["id"])
        return fired

    async def _tick_one(self, row: dict[str, Any], now: datetime) -> int:
        if not _occurred(row, now):
            if row["type"] == "cron_dependency" and row["armed_at"] is not None:
                return int(await self._check_dependencies(row["id"]))
            return 0
        if row["type"] == "cron":
            return int(await self._fire_clock(row["id"], now))
        if row["armed_at"] is None:
            await self.db.exec(Q["set_armed"], row["id"])
        return int(await self._check_dependencies(row["id"]))

    async def _fire_clock(self, trigger_id: uuid.UUID, now: datetime) -> bool:
        """A due cron occurrence fires once; skipped by the cooldown, it is consumed anyway."""
        async with self.db.transaction() as conn:
            row = _row(await self.db.one(Q["lock_trigger"], trigger_id, conn=conn))
            if row is None or not _occurred(_clock(row), now):
                return False
            if await self._fire_locked(conn, row) is None:
                await self.db.exec(Q["consume_occurrence"], row.id, conn=conn)
                return False
            return True

    async def _check_dependencies(self, trigger_id: uuid.UUID) -> bool:
        """Fire an armed `cron_dependency` trigger whose dependencies succeeded since it last fired.

        "Since" means after the previous firing (or creation); all dependencies by default, any
        one with `mode: any`.
        """
        async with self.db.transaction() as conn:
            row = _row(await self.db.one(Q["lock_trigger"], trigger_id, conn=conn))
            if row is None or row.armed_at is None:
                return False
            deps = list(row.config["dependencies"])
            since = row.last_triggered_at or row.created_at
            done = int(await self.db.val(Q["dependencies_succeeded"], deps, since, conn=conn))
            needed = 1 if row.config.get("mode") == "any" else len(deps)
            if done < needed:
                return False
            return await self._fire_locked(conn, row) is not None


def _clock(row: TriggerRow) -> dict[str, Any]:
    return {"config": row.config, "last_triggered_at": row.last_triggered_at,
            "updated_at": row.updated_at}


def _occurred(row: dict[str, Any], now: datetime) -> bool:
    """True when the trigger's cron has an occurrence after its clock start and at or before now.

    The clock starts at the last firing or the last change (creation, update, an occurrence
    consumed by the cooldown), whichever is later: re-enabling never replays missed occurrences.
    """
    start = max(row["updated_at"], row["last_triggered_at"] or row["updated_at"])
    config = row["config"]
    return next_after(config["cron_expr"], config.get("timezone") or "UTC", start) <= now
