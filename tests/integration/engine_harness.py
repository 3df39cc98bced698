"""Run pipelines in-process through `execute_run` against a real catalog and real storage.

`Engine` plays the parent's part (RunHost RPCs through `LocalHost`, publish on success, discard on failure) with the
real `IcebergTables` on the test Postgres, so strategy tests exercise the exact write path of a
worker without the dispatcher.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rat.app import sqlalchemy_url
from rat.core.specs import (
    EngineLimits,
    RunResult,
    RunSpec,
    StorageSpec,
)
from rat.engine.catalog import CatalogSpec, IcebergTables, io_properties
from rat.engine.run import execute_run
from tests.conftest import S3Server
from tests.integration.wap_support import LocalHost


def storage_for(backend: str, tmp: Path, s3: S3Server | None) -> StorageSpec:
    if backend == "local":
        return StorageSpec(kind="local", root=str(tmp / "storage"))
    assert s3 is not None
    return StorageSpec(kind="s3", bucket=s3.make_bucket(), endpoint=s3.endpoint,
                       access_key="test", secret_key="test", use_ssl=False)


class Engine:
    """Pipelines of one test: run them, publish like the dispatcher, read tables back."""

    def __init__(self, dsn: str, storage: StorageSpec, scratch: Path | None) -> None:
        self.storage = storage
        self.warehouse = storage.uri("_warehouse")
        self.scratch = scratch
        self.tables = IcebergTables(CatalogSpec(
            type="sql", uri=sqlalchemy_url(dsn), name="rat", warehouse=self.warehouse,
            storage=storage))
        self.host = LocalHost(self.tables)

    def run(self, sql: str, config: str | None = None, *, name: str = "t",
            started_at: str | None = None) -> RunResult:
        """One run of `default.silver.{name}`; published when it succeeds, discarded otherwise."""
        files = {"pipeline.sql": sql}
        if config is not None:
            files["config.yaml"] = config
        run_id = str(uuid.uuid4())
        spec = RunSpec(
            run_id=run_id, attempt=1, namespace="default", layer="silver", name=name,
            pipeline_type="sql", version_number=None, files=files,
            run_started_at=started_at or datetime.now(UTC).isoformat(timespec="microseconds"),
            storage=self.storage, warehouse=self.warehouse,
            limits=EngineLimits(memory_limit="1GB", threads=2,
                                scratch_dir=str(self.scratch / run_id) if self.scratch else ""))
        result = execute_run(spec, self.host)
        ident = f"default.silver.{name}"
        if result.ok and result.stage is not None:
            self.tables.publish(ident, result.stage.branch, result.stage.base_snapshot_id)
        elif result.stage is not None:
            self.tables.discard(ident, result.stage.branch)
        return result

    def ok(self, sql: str, config: str | None = None, **kw: Any) -> RunResult:
        result = self.run(sql, config, **kw)
        assert result.ok, result.error
        return result

    def table(self, name: str = "t") -> Any:
        table = self.tables.load(f"default.silver.{name}")
        assert table is not None
        return table

    def rows(self, name: str = "t", columns: str | None = None) -> list[tuple[Any, ...]]:
        """The published rows, read with pyiceberg (an independent reader), sorted."""
        table = self.table(name)
        data = table.scan().to_arrow()
        names = [c.strip() for c in columns.split(",")] if columns else data.column_names
        out = list(zip(*(data.column(n).to_pylist() for n in names), strict=True))
        return sorted(out, key=lambda r: tuple((v is None, str(v)) for v in r))

    def files(self, name: str = "t") -> set[str]:
        """Data files referenced by the published snapshot."""
        table = self.table(name)
        return {task.file.file_path for task in table.scan().plan_files()}

    def data_files(self, name: str = "t") -> list[Any]:
        return [task.file for task in self.table(name).scan().plan_files()]

    def io(self) -> dict[str, str]:
        return io_properties(self.storage)


def write_meta(result: RunResult) -> dict[str, Any]:
    """The write phase's profile metadata."""
    return next(p.metadata for p in result.phases if p.name == "write")
