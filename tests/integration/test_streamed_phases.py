"""A streamed write (full_refresh) runs the query inside the COPY: its time is `execute` time.

The run row's phase (RunHost.phase) is `execute` while the query runs and `write` after it, and
the phase profiles carry the query time under `execute`, not `write` (issue 16.3).
"""

from __future__ import annotations

import time
from pathlib import Path

from rat.core.specs import RunResult
from rat.engine.catalog import IcebergTables
from rat.engine.run import execute_run
from tests.integration.wap_support import Engine, LocalHost

# About a second on the test machine, returning one row: the COPY is nearly all query.
SLOW = ("SELECT sum(a.range * b.range) AS s FROM range(8000) a, range(8000) b "
        "WHERE (a.range + b.range) % 7 = 3")


class TimedHost(LocalHost):
    """Records when each phase was announced."""

    def __init__(self, tables: IcebergTables) -> None:
        super().__init__(tables)
        self.at: list[tuple[str, float]] = []

    def phase(self, name: str) -> None:
        super().phase(name)
        self.at.append((name, time.perf_counter()))


def run(engine: Engine, files: dict[str, str]) -> tuple[RunResult, TimedHost]:
    host = TimedHost(engine.tables)
    result = execute_run(engine.spec(files, name="streamed"), host)
    assert result.ok, result.error
    return result, host


def test_streamed_query_time_is_reported_as_execute(db_dsn: str, tmp_path: Path) -> None:
    engine = Engine(db_dsn, tmp_path)
    result, host = run(engine, {"pipeline.sql": SLOW})
    profiles = {p.name: p for p in result.phases}
    assert [p.name for p in result.phases] == ["load", "compile", "execute", "write", "quality"]
    assert host.phases == ["load", "compile", "execute", "write", "quality"]
    execute, write = profiles["execute"], profiles["write"]
    query_ms = execute.metadata["query_ms"]
    assert execute.metadata["streamed"] is True
    assert query_ms > 0
    assert execute.duration_ms >= query_ms
    # The run showed `execute` for the whole query: `write` was announced after the COPY.
    announced = dict(host.at)
    assert (announced["write"] - announced["execute"]) * 1000 >= query_ms
    assert write.metadata["rows_written"] == 1


def test_stored_batch_keeps_its_query_in_execute(db_dsn: str, tmp_path: Path) -> None:
    engine = Engine(db_dsn, tmp_path)
    result, host = run(engine, {"pipeline.sql": "SELECT 1 AS id",
                                "config.yaml": "merge_strategy: append_only\n"})
    profiles = {p.name: p for p in result.phases}
    assert host.phases == ["load", "compile", "execute", "write", "quality"]
    assert "query_ms" not in profiles["execute"].metadata
    assert profiles["execute"].metadata["rows"] == 1
