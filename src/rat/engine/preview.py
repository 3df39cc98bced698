"""Preview and ad-hoc test jobs for the preview workers (entry: `rat.engine.preview` module).

Preview is a dry run of the draft: the run's load and compile phases, the query executed once
under EXPLAIN ANALYZE into a temp table, then rows, counts, types and the schema difference
against the published table. Nothing is written: no branch, no snapshot, no run record.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec

from rat.core.specs import PhaseProfile, QualityOutcome, RunSpec, TableState
from rat.engine import quality
from rat.engine.config import PipelineConfig
from rat.engine.pyexec import PythonError
from rat.engine.query import json_value
from rat.engine.render import CompileError
from rat.engine.run import (
    Attempt,
    Compiled,
    Resolver,
    RunFailed,
    StagedResolver,
    describe_error,
    render_context,
    scan_expr,
    watermark,
)
from rat.engine.worker import Channel, register_job
from rat.engine.write import BATCH, WriteError, iceberg_safe_select

if TYPE_CHECKING:
    import duckdb

    from rat.core.specs import CommitRequest, StageRequest, StageState


class PreviewSpec(msgspec.Struct, frozen=True, kw_only=True):
    run: RunSpec
    limit: int = 100
    run_tests: bool = False


class Column(msgspec.Struct, frozen=True):
    name: str
    type: str


class LogRecord(msgspec.Struct, frozen=True):
    timestamp: str
    level: str
    message: str


class SchemaDiff(msgspec.Struct, kw_only=True):
    added: list[Column] = msgspec.field(default_factory=list)
    removed: list[Column] = msgspec.field(default_factory=list)
    changed: list[dict[str, str]] = msgspec.field(default_factory=list)


class PreviewOutput(msgspec.Struct, kw_only=True):
    columns: list[Column] = msgspec.field(default_factory=list)
    rows: list[dict[str, Any]] = msgspec.field(default_factory=list)
    total_row_count: int = 0
    phases: list[PhaseProfile] = msgspec.field(default_factory=list)
    explain_output: str = ""
    memory_peak_bytes: int = 0
    logs: list[LogRecord] = msgspec.field(default_factory=list)
    error: str | None = None
    warnings: list[str] = msgspec.field(default_factory=list)
    quality: list[QualityOutcome] | None = None
    schema_diff: SchemaDiff | None = None


class TestsOutput(msgspec.Struct, kw_only=True):
    quality: list[QualityOutcome] = msgspec.field(default_factory=list)
    error: str | None = None


class PreviewHost:
    """RunHost for previews: table lookups go to the parent, logs stay with the preview."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.logs: list[LogRecord] = []

    def table_state(self, ident: str) -> TableState | None:
        body = self.channel.rpc("table_state", ident)
        return None if body is None else msgspec.convert(body, TableState)

    def landing_files(self, namespace: str, zone: str) -> list[str]:
        return []

    def landing_glob(self, namespace: str, zone: str) -> tuple[str, str | None]:
        body = self.channel.rpc("preview_landing", [namespace, zone])
        return str(body["glob"]), body.get("warning")

    def prepare_stage(self, req: StageRequest) -> StageState:
        raise RunFailed("previews never write")

    def commit_stage(self, req: CommitRequest) -> StageState:
        raise RunFailed("previews never write")

    def log(self, level: str, message: str) -> None:
        from rat.core.timefmt import rfc3339, utcnow

        self.logs.append(LogRecord(timestamp=rfc3339(utcnow()) or "", level=level,
                                   message=message))

    def phase(self, name: str) -> None:
        """Preview phases are reported in the result, not streamed."""


class PreviewResolver(Resolver):
    """landing_zone() reads the zone's sample files (a scratch copy made by the parent)."""

    def __init__(self, spec: RunSpec, host: PreviewHost) -> None:
        super().__init__(spec, host)
        self.preview_host = host
        self.warnings: list[str] = []

    def landing_zone(self, zone: str) -> str:
        glob, warning = self.preview_host.landing_glob(self.spec.namespace, str(zone))
        if warning and warning not in self.warnings:
            self.warnings.append(warning)
        return glob


class PreviewAttempt(Attempt):
    def __init__(self, job: PreviewSpec, host: PreviewHost) -> None:
        super().__init__(job.run, host)
        self.job = job
        self.preview_host = host
        self.preview_resolver = PreviewResolver(job.run, host)
        self.resolver = self.preview_resolver
        self.out = PreviewOutput()

    def preview(self) -> PreviewOutput:
        con = self.connect()
        try:
            self._preview(con)
        except (RunFailed, CompileError, WriteError, PythonError) as exc:
            self.out.error = str(exc)
        except Exception as exc:  # engine errors come back as `error`, like user-code errors
            self.out.error = describe_error(exc)
        finally:
            con.close()
            self.out.phases = self.phases.profiles
            self.out.logs = self.preview_host.logs
            self.out.warnings = [*self.preview_resolver.warnings, *self.out.warnings]
        return self.out

    def _preview(self, con: duckdb.DuckDBPyConnection) -> None:
        entry, config = self.load()
        compiled = self.compile(con, entry, config)
        with self.phases.phase("execute") as meta:
            self.out.explain_output = self._execute(con, compiled)
            self.out.memory_peak_bytes = _memory_bytes(con)
            meta["memory_bytes"] = self.out.memory_peak_bytes
        with self.phases.phase("profile") as meta:
            self._profile(con)
            meta["rows"] = self.out.total_row_count
        if self.job.run_tests:
            with self.phases.phase("quality") as meta:
                self.out.quality = self._tests(con, config)
                meta.update(quality.summary(self.out.quality))

    def _execute(self, con: duckdb.DuckDBPyConnection, compiled: Compiled) -> str:
        """Run the query once, profiled; Python pipelines have no plan to show."""
        if compiled.globals is not None:
            self.materialize(con, compiled)
            return ""
        safe_sql, _names = iceberg_safe_select(con, compiled.sql)
        row = con.execute(f"EXPLAIN ANALYZE CREATE TEMP TABLE {BATCH} AS {safe_sql}").fetchone()
        return str(row[1]) if row else ""

    def _profile(self, con: duckdb.DuckDBPyConnection) -> None:
        described = con.execute(f"DESCRIBE {BATCH}").fetchall()
        self.out.columns = [Column(str(r[0]), str(r[1])) for r in described]
        count = con.execute(f"SELECT count(*) FROM {BATCH}").fetchone()
        self.out.total_row_count = int(count[0]) if count else 0
        cursor = con.execute(f"SELECT * FROM {BATCH} LIMIT {int(self.job.limit)}")
        names = [c.name for c in self.out.columns]
        self.out.rows = [{n: json_value(v) for n, v in zip(names, row, strict=True)}
                         for row in cursor.fetchall()]
        self.out.schema_diff = self._schema_diff(con)

    def _schema_diff(self, con: duckdb.DuckDBPyConnection) -> SchemaDiff | None:
        state = self.resolver.state(self.resolver.ident)
        if state is None or not state.published:
            return None
        rows = con.execute(f"DESCRIBE SELECT * FROM {scan_expr(state)}").fetchall()
        published = {str(r[0]): str(r[1]) for r in rows}
        preview = {c.name: c.type for c in self.out.columns}
        return SchemaDiff(
            added=[Column(n, t) for n, t in preview.items() if n not in published],
            removed=[Column(n, t) for n, t in published.items() if n not in preview],
            changed=[{"name": n, "from": published[n], "to": t} for n, t in preview.items()
                     if n in published and published[n] != t])

    def _tests(self, con: duckdb.DuckDBPyConnection, config: PipelineConfig) -> list[QualityOutcome]:
        ctx = render_context(config, StagedResolver(self.resolver, BATCH),
                             self.spec.run_started_at, self.watermark_value, lambda: BATCH)
        runner = quality.TestRunner(con, ctx, log=self.host.log,
                                    timeout_seconds=self.spec.limits.quality_timeout_seconds)
        return runner.run_all(quality.collect(self.spec.files, config))


def _memory_bytes(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT sum(memory_usage_bytes) FROM duckdb_memory()").fetchone()
    return int(row[0] or 0) if row else 0


class TestsAttempt(Attempt):
    """Ad-hoc quality tests against the published table (`POST …/tests/run`)."""

    def tests(self) -> TestsOutput:
        con = self.connect()
        try:
            return TestsOutput(quality=self._tests(con))
        except (RunFailed, CompileError) as exc:
            return TestsOutput(error=str(exc))
        finally:
            con.close()

    def _tests(self, con: duckdb.DuckDBPyConnection) -> list[QualityOutcome]:
        _entry, config = self.load()
        state = self.resolver.state(self.resolver.ident)
        if state is None or not state.published:
            raise RunFailed(f"table {self.resolver.ident} does not exist yet")
        published = scan_expr(state)
        ctx = render_context(config, self.resolver, self.spec.run_started_at,
                             watermark(con, self.resolver, config.watermark_column),
                             lambda: published)
        runner = quality.TestRunner(con, ctx, timeout_seconds=self.spec.limits.quality_timeout_seconds)
        return runner.run_all(quality.collect(self.spec.files, config))


# DECIMAL values leave as exact JSON numbers, as the API promises.
_JSON = msgspec.json.Encoder(decimal_format="number")


def outcome_json(outcome: QualityOutcome) -> dict[str, Any]:
    """A not-persisted test result in the QualityResult shape (no id, run or timestamp)."""
    data: dict[str, Any] = msgspec.to_builtins(outcome, builtin_types=(Decimal,))
    data.update(name=outcome.test_name, value=outcome.row_count, expected=0)
    return data


def response_json(out: PreviewOutput) -> bytes:
    """The API's preview body: `error` and `quality` only when present."""
    data: dict[str, Any] = msgspec.to_builtins(out, builtin_types=(Decimal,))
    if out.error is None:
        data.pop("error")
    if out.quality is None:
        data.pop("quality")
    else:
        data["quality"] = [outcome_json(q) for q in out.quality]
    return _JSON.encode(data)


def _preview_job(body: bytes, channel: Channel) -> bytes:
    job = msgspec.msgpack.decode(body, type=PreviewSpec)
    return response_json(PreviewAttempt(job, PreviewHost(channel)).preview())


def _tests_job(body: bytes, channel: Channel) -> bytes:
    spec = msgspec.msgpack.decode(body, type=RunSpec)
    return msgspec.msgpack.encode(TestsAttempt(spec, PreviewHost(channel)).tests())


register_job("preview", _preview_job)
register_job("quality", _tests_job)
