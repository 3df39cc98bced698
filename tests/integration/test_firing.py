"""Schedule ticks and trigger firings against a real Postgres: idempotency under concurrency,
catch-up once, skip-if-active, coalescing, cooldowns and cron_dependency arming."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rat.core.errors import RateLimited
from rat.core.events import Event, EventBus
from rat.core.specs import StorageSpec
from rat.db.database import Database, create_pool
from rat.landing.service import LandingService
from rat.pipelines.models import PipelineCreate
from rat.pipelines.service import PipelinesService
from rat.runs.service import RunsService
from rat.schedules.firing import TriggerFiring
from rat.schedules.models import ScheduleCreate, TriggerCreate
from rat.schedules.service import SchedulesService
from rat.schedules.triggers import TriggersService
from rat.storage.base import Storage
from rat.storage.local import LocalStore


class Node:
    """The automation services of one RAT process (own pool, own event bus)."""

    def __init__(self, db: Database, root: Path) -> None:
        self.db = db
        self.events = EventBus()
        self.seen: list[Event] = []
        self.events.subscribe(self.seen.append)
        storage = Storage(LocalStore(root))
        self.pipelines = PipelinesService(db, storage, self.events)
        self.runs = RunsService(db, self.pipelines, self.events)
        self.schedules = SchedulesService(db, self.pipelines, self.runs, self.events,
                                          tick_seconds=1.0)
        landing = LandingService(db, storage, StorageSpec(kind="local", root=str(root)),
                                 self.pipelines, self.events)
        self.triggers = TriggersService(db, self.pipelines, landing)
        self.firing = TriggerFiring(db, self.pipelines, self.runs, self.events)

    async def sql(self, query: str, *args: Any) -> Any:
        async with self.db.connection() as conn:
            return await conn.fetchval(query, *args)


@pytest.fixture
async def nodes(db: Database, db_dsn: str, tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    other = Database(await create_pool(db_dsn, 4), db_dsn)
    yield Node(db, tmp_path / "s"), Node(other, tmp_path / "s")
    await other.close()


async def _pipeline(node: Node, name: str, layer: str = "bronze") -> uuid.UUID:
    await node.pipelines.create(PipelineCreate(namespace="default", layer=layer, name=name))
    return (await node.pipelines.get("default", layer, name)).id


async def _runs(node: Node, pipeline_id: uuid.UUID) -> int:
    return int(await node.sql("SELECT count(*) FROM runs WHERE pipeline_id = $1", pipeline_id))


async def test_concurrent_ticks_create_one_run_and_catch_up_once(nodes: tuple[Node, Node]
                                                                  ) -> None:
    a, b = nodes
    pid = await _pipeline(a, "hourly")
    sched = await a.schedules.create(ScheduleCreate(layer="bronze", pipeline="hourly",
                                                    cron="0 * * * *"))
    # down for five hours: five occurrences were missed
    await a.sql("UPDATE schedules SET next_run_at = now() - interval '5 hours' WHERE id = $1",
                sched.id)
    fired = await asyncio.gather(*(n.schedules.tick() for n in (a, b, a, b)))
    assert sum(fired) == 1
    assert await _runs(a, pid) == 1
    after = await a.schedules.get(sched.id)
    assert after.next_run_at is not None
    assert after.next_run_at > await a.sql("SELECT now()")
    assert after.last_run_id is not None
    run = await a.runs.get(after.last_run_id)
    assert run.trigger == "schedule:0 * * * *"
    assert run.scheduled_for is not None
    assert [e.type for e in a.seen + b.seen if e.type == "schedule_fired"] == ["schedule_fired"]


async def test_skip_if_active_advances_without_a_run(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    pid = await _pipeline(a, "busy")
    pipeline = await a.pipelines.get("default", "bronze", "busy")
    await a.runs.enqueue(pipeline, "manual")
    sched = await a.schedules.create(ScheduleCreate(layer="bronze", pipeline="busy",
                                                    cron="* * * * * *"))
    await a.sql("UPDATE schedules SET next_run_at = now() - interval '1 second' WHERE id = $1",
                sched.id)
    assert await a.schedules.tick() == 0
    assert await _runs(a, pid) == 1
    assert [e.type for e in a.seen].count("schedule_skipped") == 1
    assert (await a.schedules.get(sched.id)).next_run_at > await a.sql("SELECT now()")


async def test_concurrent_webhooks_coalesce_into_one_pending_run(nodes: tuple[Node, Node]
                                                                 ) -> None:
    a, b = nodes
    pid = await _pipeline(a, "hooked")
    pipeline = await a.pipelines.get("default", "bronze", "hooked")
    hook = await a.triggers.create("default", "bronze", "hooked",
                                   TriggerCreate(type="webhook"), base_url="http://x")
    token = str(hook.webhook_token)
    results = await asyncio.gather(*(n.firing.webhook(token) for n in (a, b) * 5))
    assert len({r.run_id for r in results}) == 1
    assert sum(not r.coalesced for r in results) == 1
    assert await _runs(a, pid) == 1
    assert await a.sql("SELECT last_run_id FROM pipeline_triggers WHERE id = $1",
                       hook.id) == results[0].run_id
    assert pipeline.current_version is None


async def test_cooldown_refuses_with_retry_after(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    await _pipeline(a, "cool")
    hook = await a.triggers.create("default", "bronze", "cool",
                                   TriggerCreate(type="webhook", cooldown_seconds=600),
                                   base_url="http://x")
    await a.firing.webhook(str(hook.webhook_token))
    with pytest.raises(RateLimited) as refused:
        await a.firing.webhook(str(hook.webhook_token))
    assert 590 <= refused.value.retry_after <= 600


async def test_cron_dependency_arms_then_fires_once(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    up = await _pipeline(a, "up")
    down = await _pipeline(a, "down", "gold")
    trig = await a.triggers.create("default", "gold", "down", TriggerCreate(
        type="cron_dependency", config={"cron_expr": "@hourly",
                                        "dependencies": ["default.bronze.up"]}),
        base_url="http://x")
    assert await a.firing.tick() == 0
    assert await a.sql("SELECT armed_at FROM pipeline_triggers WHERE id = $1", trig.id) is None
    # an hour passes: the occurrence arms the trigger, but "up" has not succeeded since
    await a.sql("UPDATE pipeline_triggers SET created_at = now() - interval '2 hours', "
                "updated_at = now() - interval '2 hours' WHERE id = $1", trig.id)
    assert await a.firing.tick() == 0
    assert await a.sql("SELECT armed_at FROM pipeline_triggers WHERE id = $1", trig.id)
    await a.sql("INSERT INTO runs (id, pipeline_id, status, finished_at) "
                "VALUES ($1, $2, 'success', now())", uuid.uuid4(), up)
    await a.firing.on_run_completed(Event(type="run_completed", data={
        "status": "success", "namespace": "default", "layer": "bronze", "name": "up"}))
    assert await _runs(a, down) == 1
    assert await a.sql("SELECT armed_at FROM pipeline_triggers WHERE id = $1", trig.id) is None
    assert await a.firing.tick() == 0  # disarmed until the next occurrence
    assert await _runs(a, down) == 1
