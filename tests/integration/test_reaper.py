"""The reaper against a real Postgres, real local storage and a real Iceberg SQL catalog."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rat.app import sqlalchemy_url
from rat.core.events import EventBus
from rat.core.specs import StorageSpec
from rat.db.database import Database
from rat.engine import maintenance
from rat.engine.catalog import CatalogSpec, IcebergTables, branch_name
from rat.landing.archive import Archiver
from rat.pipelines.models import PipelineCreate
from rat.pipelines.retention import RetentionService
from rat.pipelines.service import PipelinesService
from rat.retention.reaper import Reaper
from rat.retention.service import RetentionSettings
from rat.runs.service import RunsService
from rat.storage.base import Storage
from rat.storage.local import LocalStore

DAY = 86_400


class World:
    def __init__(self, db: Database, dsn: str, root: Path) -> None:
        self.db = db
        self.root = root
        self.events = EventBus()
        self.storage = Storage(LocalStore(root))
        spec = StorageSpec(kind="local", root=str(root))
        self.tables = IcebergTables(CatalogSpec(type="sql", uri=sqlalchemy_url(dsn), name="rat",
                                                warehouse=str(root / "_warehouse"), storage=spec))
        self.pipelines = PipelinesService(db, self.storage, self.events)
        self.runs = RunsService(db, self.pipelines, self.events)
        self.retention = RetentionSettings(db)
        self.overrides = RetentionService(db, self.pipelines)
        self.reaper = Reaper(db=db, storage=self.storage, tables=self.tables,
                             retention=self.retention, events=self.events,
                             archiver=Archiver(db, self.storage, self.pipelines))

    async def pipeline(self, name: str, layer: str = "bronze") -> uuid.UUID:
        await self.pipelines.create(PipelineCreate(namespace="default", layer=layer, name=name))
        return (await self.pipelines.get("default", layer, name)).id

    async def run(self, pipeline_id: uuid.UUID, status: str, age_seconds: float = 0) -> uuid.UUID:
        run_id = uuid.uuid4()
        async with self.db.connection() as conn:
            await conn.execute(
                "INSERT INTO runs (id, pipeline_id, status, started_at, finished_at, created_at) "
                "VALUES ($1, $2, $3, now() - make_interval(secs => $4), "
                "CASE WHEN $3 IN ('success', 'failed', 'cancelled') THEN now() END, "
                "now() - make_interval(secs => $4))", run_id, pipeline_id, status,
                float(age_seconds))
        return run_id

    async def sql(self, query: str, *args: object) -> object:
        async with self.db.connection() as conn:
            return await conn.fetchval(query, *args)


@pytest.fixture
async def world(db: Database, db_dsn: str, tmp_path: Path) -> World:
    return World(db, db_dsn, tmp_path / "storage")


async def test_postgres_tasks_honour_every_knob_and_overrides(world: World) -> None:
    busy, quiet, old = [await world.pipeline(n) for n in ("busy", "quiet", "old")]
    for age in (50, 40, 30, 20, 10):
        await world.run(busy, "success", age)
    await world.run(busy, "running", 60)          # active: never pruned, never counted out
    await world.run(quiet, "success", 10)
    await world.run(old, "failed", 91 * DAY)     # older than runs_max_age_days (90)
    stuck = await world.run(quiet, "running", 3 * 3600)
    await world.overrides.put("default", "bronze", "busy",
                                           {"runs_max_per_pipeline": 3})
    logged = await world.run(quiet, "success", 5)
    await world.sql("INSERT INTO run_logs (run_id, seq, ts, level, message) VALUES "
                    "($1, 1, now() - interval '31 days', 'info', 'old'), "
                    "($1, 2, now(), 'info', 'new')", logged)
    for _ in range(4):
        await world.sql("INSERT INTO quality_results (id, pipeline_id, test_name, kind, severity, "
                        "status) VALUES ($1, $2, 't', 'custom', 'error', 'pass')",
                        uuid.uuid4(), quiet)
    await world.retention.update({"quality_results_max_per_test": 2})
    await world.sql("INSERT INTO audit_log (id, action, resource, created_at) VALUES "
                    "($1, 'post', 'x', now() - interval '400 days')", uuid.uuid4())

    status = await world.reaper.run_pass()

    assert (status.runs_pruned, status.runs_failed, status.logs_pruned, status.quality_pruned,
            status.audit_pruned) == (3, 1, 1, 2, 1)
    assert status.running is False
    assert status.last_run_at is not None
    busy_left = await world.sql("SELECT count(*) FROM runs WHERE pipeline_id = $1", busy)
    assert busy_left == 4  # the newest three, plus the (older) running run that is never pruned
    assert await world.sql("SELECT error FROM runs WHERE id = $1", stuck) == \
        "run timed out after 120 minutes"
    again = await world.reaper.run_pass()
    assert again.runs_pruned == status.runs_pruned  # counters accumulate; nothing new to do


async def test_per_pipeline_stuck_timeout_and_unstarted_runs(world: World) -> None:
    fast = await world.pipeline("fast")
    await world.overrides.put("default", "bronze", "fast",
                                           {"stuck_run_timeout_minutes": 1})
    stuck = await world.run(fast, "running", 120)
    pending = await world.run(fast, "pending", 25 * 3600)
    await world.reaper.run_pass()
    assert await world.sql("SELECT status || ': ' || error FROM runs WHERE id = $1", stuck) == \
        "failed: run timed out after 1 minutes"
    assert await world.sql("SELECT status || ': ' || error FROM runs WHERE id = $1", pending) == \
        "failed: never started"


async def test_pass_is_exclusive(world: World) -> None:
    from rat.core.errors import FailedPrecondition

    await world.sql("UPDATE reaper_status SET running = true, updated_at = now()")
    with pytest.raises(FailedPrecondition):
        await world.reaper.run_pass()
    await world.sql("UPDATE reaper_status SET updated_at = now() - interval '1 hour'")
    assert (await world.reaper.run_pass()).running is False  # a stale flag is taken over


async def test_purges_soft_deleted_pipelines_with_their_files(world: World) -> None:
    gone = await world.pipeline("gone")
    recent = await world.pipeline("recent")
    await world.pipelines.delete("default", "bronze", "gone")
    await world.pipelines.delete("default", "bronze", "recent")
    await world.sql("UPDATE pipelines SET deleted_at = now() - interval '31 days' WHERE id = $1",
                    gone)
    assert await world.storage.list(f"_rat/trash/{gone}/")
    status = await world.reaper.run_pass()
    assert status.pipelines_purged == 1
    assert await world.sql("SELECT count(*) FROM pipelines WHERE id = $1", gone) == 0
    assert await world.storage.list(f"_rat/trash/{gone}/") == []
    assert await world.sql("SELECT count(*) FROM pipelines WHERE id = $1", recent) == 1


async def test_deletes_unreferenced_blobs_after_a_day(world: World) -> None:
    old_key, young_key = "_rat/blobs/sha256/aa/" + "a" * 64, "_rat/blobs/sha256/bb/" + "b" * 64
    for key in (old_key, young_key):
        await world.storage.write(key, b"x")
    past = time.time() - 2 * DAY
    os.utime(world.root / old_key, (past, past))
    status = await world.reaper.run_pass()
    assert status.blobs_deleted == 1
    assert await world.storage.stat(old_key) is None
    assert await world.storage.stat(young_key) is not None


async def test_purges_processed_landing_files_of_auto_purge_zones(world: World) -> None:
    zone_id = uuid.uuid4()
    await world.sql("INSERT INTO landing_zones (id, namespace, name, auto_purge, "
                    "processed_max_age_days) VALUES ($1, 'default', 'inbox', true, 2)", zone_id)
    old = "default/landing/inbox/_processed/r1/a.csv"
    new = "default/landing/inbox/_processed/r2/b.csv"
    fresh = "default/landing/inbox/c.csv"
    for key, days in ((old, 3), (new, 1)):
        await world.storage.write(key, b"1")
        await world.sql("INSERT INTO landing_files (id, zone_id, filename, s3_path, size_bytes, "
                        "processed_run_id, processed_at) VALUES ($1, $2, 'f', $3, 1, $4, "
                        "now() - make_interval(days => $5))", uuid.uuid4(), zone_id, key,
                        uuid.uuid4(), days)
    await world.storage.write(fresh, b"1")
    status = await world.reaper.run_pass()
    assert status.lz_files_cleaned == 1
    assert await world.storage.stat(old) is None
    assert await world.storage.stat(new) is not None
    assert await world.storage.stat(fresh) is not None
    assert await world.sql("SELECT count(*) FROM landing_files WHERE s3_path = $1", old) == 0


def _make_table(world: World, name: str, pipeline_id: uuid.UUID, batches: int) -> list[int]:
    import pyarrow as pa

    catalog = world.tables.catalog
    catalog.create_namespace_if_not_exists(("default", "bronze"))
    table = catalog.create_table(("default", "bronze", name),
                                 schema=pa.schema([("n", pa.int64())]),
                                 location=world.tables.location(f"default.bronze.{name}"),
                                 properties={"rat.pipeline_id": str(pipeline_id)})
    for i in range(batches):
        table.append(pa.table({"n": [i]}))
        table = world.tables.load(f"default.bronze.{name}")
    return [s.snapshot_id for s in table.metadata.snapshots]


async def test_iceberg_expiry_branches_and_orphans(world: World) -> None:
    pid = await world.pipeline("facts")
    ident = "default.bronze.facts"
    snaps = await asyncio.to_thread(_make_table, world, "facts", pid, 4)
    table = world.tables.load(ident)
    assert table is not None
    table.manage_snapshots().create_tag(snaps[0], "rat_v1").commit()
    finished = await world.run(pid, "success")
    active = await world.run(pid, "running")
    for run_id in (finished, active, uuid.uuid4()):
        world.tables.load(ident).manage_snapshots().create_branch(  # type: ignore[union-attr]
            snaps[1], branch_name(str(run_id))).commit()
    orphan = world.root / "_warehouse/default/bronze/facts/data/orphan.parquet"
    orphan.write_bytes(b"junk")
    old = time.time() - 4 * DAY
    os.utime(orphan, (old, old))
    await world.overrides.put("default", "bronze", "facts",
                                           {"iceberg_snapshot_max_age_days": 2})
    config = await world.retention.config()
    later = datetime.now(UTC) + timedelta(days=3)

    # branch heads are recent: nothing is removed until the branch age limit has passed
    assert await world.reaper.tasks["branches_cleaned"](config, datetime.now(UTC)) == 0
    assert await world.reaper.tasks["branches_cleaned"](config, later) == 2
    refs = world.tables.load(ident).metadata.refs  # type: ignore[union-attr]
    assert set(refs) == {"main", "rat_v1", branch_name(str(active))}

    # the per-pipeline override (2 days) applies; current, tagged and branch heads stay
    assert await world.reaper.tasks["snapshots_expired"](config, later) == 1
    kept = {s.snapshot_id for s in world.tables.load(ident).metadata.snapshots}  # type: ignore[union-attr]
    assert kept == {snaps[0], snaps[1], snaps[3]}

    data_files = sorted(p.name for p in orphan.parent.iterdir())
    assert await world.reaper.tasks["orphan_files_removed"](config, datetime.now(UTC)) == 1
    assert not orphan.exists()
    # files of the expired snapshot are unreferenced now, but younger than the orphan age
    assert sorted(p.name for p in orphan.parent.iterdir()) == \
        [n for n in data_files if n != "orphan.parquet"]
    removed = await world.reaper.tasks["orphan_files_removed"](config, later + timedelta(days=1))
    assert removed >= 1  # the expired snapshot's manifest list at least
    rows = world.tables.load(ident).scan().to_arrow()  # type: ignore[union-attr]
    assert sorted(rows.column("n").to_pylist()) == [0, 1, 2, 3]
    assert await asyncio.to_thread(maintenance.referenced_files, world.tables, "default.x.y") \
        is None


async def test_file_deletions_wait_while_a_backup_holds_the_fence(world: World) -> None:
    """A backup copying storage closes the window: file deletions skip, row pruning goes on."""
    from functools import partial

    from rat.ops.fence import backup_fence, deletion_window

    key = "_rat/blobs/sha256/cc/" + "c" * 64
    await world.storage.write(key, b"x")
    past = time.time() - 2 * DAY
    os.utime(world.root / key, (past, past))
    await world.sql("INSERT INTO audit_log (id, action, resource, created_at) VALUES "
                    "($1, 'post', 'x', now() - interval '400 days')", uuid.uuid4())
    world.reaper.deletion_window = partial(deletion_window, world.db)
    async with backup_fence(world.db):
        status = await world.reaper.run_pass()
    assert (status.blobs_deleted, status.audit_pruned) == (0, 1)
    assert await world.storage.stat(key) is not None
    assert (await world.reaper.run_pass()).blobs_deleted == 1  # the backup is over
