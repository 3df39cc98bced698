"""Run logs against a real Postgres: a terminal run's log is closed; reconciled runs say why."""

from __future__ import annotations

import uuid
from pathlib import Path

from rat.app import sqlalchemy_url
from rat.config import Settings
from rat.core.events import EventBus
from rat.core.specs import StorageSpec
from rat.db.database import Database
from rat.engine.catalog import CatalogSpec, IcebergTables
from rat.pipelines.models import PipelineCreate
from rat.pipelines.service import PipelinesService
from rat.runtime.dispatcher import Dispatcher
from rat.runtime.runlog import RunLogWriter
from rat.runtime.workers import WorkerPool
from rat.storage.base import Storage
from rat.storage.local import LocalStore


async def _pipeline(db: Database, root: Path) -> tuple[PipelinesService, uuid.UUID]:
    pipelines = PipelinesService(db, Storage(LocalStore(root)), EventBus())
    await pipelines.create(PipelineCreate(namespace="default", layer="bronze", name="logs"))
    return pipelines, (await pipelines.get("default", "bronze", "logs")).id


async def _running_run(db: Database, pipeline_id: uuid.UUID, *, expired: bool = False) -> uuid.UUID:
    run_id = uuid.uuid4()
    async with db.connection() as conn:
        await conn.execute(
            "INSERT INTO runs (id, pipeline_id, status, phase, attempt, started_at, lease_token, "
            "lease_expires_at) VALUES ($1, $2, 'running', 'execute', 1, now(), $3, "
            "now() + make_interval(secs => $4))", run_id, pipeline_id, uuid.uuid4(),
            -60.0 if expired else 60.0)
    return run_id


async def _messages(db: Database, run_id: uuid.UUID) -> list[str]:
    async with db.connection() as conn:
        rows = await conn.fetch("SELECT message FROM run_logs WHERE run_id = $1 ORDER BY seq",
                                run_id)
    return [r["message"] for r in rows]


async def _end(db: Database, run_id: uuid.UUID, seconds_ago: float) -> None:
    async with db.connection() as conn:
        await conn.execute("UPDATE runs SET status = 'failed', finished_at = now() - "
                           "make_interval(secs => $2) WHERE id = $1", run_id, seconds_ago)


async def test_a_terminal_runs_log_takes_no_new_lines(db: Database, tmp_path: Path) -> None:
    _, pipeline_id = await _pipeline(db, tmp_path)
    run_id = await _running_run(db, pipeline_id)
    logs = await RunLogWriter.open(db, run_id)
    logs.write("info", "while running")
    await logs.flush()
    logs.write("info", "concluding, flushed just after the end")
    await _end(db, run_id, 0)
    await logs.flush()
    await _end(db, run_id, 30)  # a lost attempt still talking half a minute later
    logs.write("warn", "lease lost: stopping the worker")
    await logs.close()
    assert await _messages(db, run_id) == ["while running",
                                           "concluding, flushed just after the end"]


async def test_reconciled_runs_say_why_in_their_log(db: Database, tmp_path: Path) -> None:
    pipelines, pipeline_id = await _pipeline(db, tmp_path)
    orphan = await _running_run(db, pipeline_id, expired=True)
    spec = StorageSpec(kind="local", root=str(tmp_path))
    tables = IcebergTables(CatalogSpec(type="sql", uri=sqlalchemy_url(db.dsn), name="rat",
                                       warehouse=str(tmp_path / "_warehouse"), storage=spec))
    dispatcher = Dispatcher(settings=Settings(data_dir=str(tmp_path)), db=db,
                            pipelines=pipelines, tables=tables, pool=WorkerPool("run", 1),
                            events=EventBus(), storage_spec=spec,
                            warehouse=str(tmp_path / "_warehouse"), landing=_no_landing)
    assert await dispatcher.reconcile() == 1
    assert await dispatcher.reconcile() == 0
    async with db.connection() as conn:
        run = await conn.fetchrow("SELECT status, error FROM runs WHERE id = $1", orphan)
    assert run["status"] == "failed"
    assert run["error"] == "worker lost: the run's worker or server died"
    [line] = await _messages(db, orphan)
    assert line.startswith("worker lost: the lease expired with no server renewing it")


async def _no_landing(_namespace: str, _zone: str) -> list[str]:
    return []
