"""Run the engine in-process against a real catalog (pyiceberg SqlCatalog on the test Postgres).

`LocalHost` is the RunHost the parent process implements over the worker pipe, minus the pipe:
catalog calls go straight to `IcebergTables`, logs and phases are collected for assertions.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import msgspec

from rat.app import sqlalchemy_url
from rat.core.specs import (
    CommitRequest,
    EngineLimits,
    RunResult,
    RunSpec,
    StageRequest,
    StageState,
    StorageSpec,
    TableState,
)
from rat.core.timefmt import utcnow
from rat.engine.catalog import CatalogSpec, IcebergTables
from rat.engine.run import execute_run


class LocalHost:
    def __init__(self, tables: IcebergTables) -> None:
        self.tables = tables
        self.logs: list[tuple[str, str]] = []
        self.phases: list[str] = []

    def table_state(self, ident: str) -> TableState | None:
        return self.tables.state(ident)

    def landing_files(self, namespace: str, zone: str) -> list[str]:
        return []

    def prepare_stage(self, req: StageRequest) -> StageState:
        return self.tables.prepare_stage(req)

    def commit_stage(self, req: CommitRequest) -> StageState:
        return self.tables.commit_stage(req)

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def phase(self, name: str) -> None:
        self.phases.append(name)


class Engine:
    """A warehouse in a temp dir with a catalog in the test database."""

    def __init__(self, dsn: str, root: Path) -> None:
        self.storage = StorageSpec(kind="local", root=str(root / "storage"))
        self.warehouse = str(root / "warehouse")
        self.scratch = root / "scratch"
        self.tables = IcebergTables(CatalogSpec(
            type="sql", uri=sqlalchemy_url(dsn), name="rat", warehouse=self.warehouse,
            storage=self.storage))

    def spec(self, files: dict[str, str], *, name: str = "orders", layer: str = "silver",
             timeout: int = 60, version: int | None = None) -> RunSpec:
        run_id = str(uuid.uuid4())
        return RunSpec(
            run_id=run_id, attempt=1, namespace="default", layer=layer, name=name,
            pipeline_type="python" if "pipeline.py" in files else "sql",
            version_number=version, files=files,
            run_started_at=utcnow().isoformat(timespec="microseconds"),
            storage=self.storage, warehouse=self.warehouse,
            limits=EngineLimits(memory_limit="512MB", threads=1,
                                scratch_dir=str(self.scratch / run_id),
                                quality_timeout_seconds=timeout))

    def run(self, files: dict[str, str], **kwargs: Any) -> tuple[RunResult, LocalHost]:
        """One attempt; publishes like the dispatcher when it succeeded and the gate passed."""
        host = LocalHost(self.tables)
        spec = self.spec(files, **kwargs)
        result = execute_run(spec, host)
        ident = f"default.{spec.layer}.{spec.name}"
        blocked = any(q.severity == "error" and q.status != "pass" for q in result.quality)
        if result.stage is not None:
            if result.ok and not blocked:
                self.tables.publish(ident, result.stage.branch, result.stage.base_snapshot_id)
            else:
                self.tables.discard(ident, result.stage.branch)
        return result, host

    def snapshot(self, ident: str) -> int | None:
        state = self.tables.state(ident)
        return state.snapshot_id if state else None

    def rows(self, ident: str, order: str = "1") -> list[tuple[Any, ...]]:
        from rat.engine import duck

        state = self.tables.state(ident)
        assert state is not None
        con = duck.connect(memory_limit="256MB", threads=1)
        try:
            return con.execute(
                f"SELECT * FROM iceberg_scan({duck.sql_str(state.metadata_location)}, "
                f"snapshot_from_id={state.snapshot_id}) ORDER BY {order}").fetchall()
        finally:
            con.close()


def outcome(result: RunResult, name: str) -> dict[str, Any]:
    found = [q for q in result.quality if q.test_name == name]
    assert found, f"no test {name}: {[q.test_name for q in result.quality]}"
    return dict(msgspec.to_builtins(found[0]))
