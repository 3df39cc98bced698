"""One run attempt inside a worker: load, compile, execute, write (stage), quality.

The worker has no database credentials. Everything that touches platform state or the catalog
goes through `RunHost`, which the parent implements (over the worker pipe) and which tests may
implement in-process with the real catalog.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from rat.core.specs import (
    CommitRequest,
    PhaseProfile,
    RunResult,
    RunSpec,
    StageRequest,
    StageState,
    TableState,
)
from rat.engine import duck, extensions, faults, quality
from rat.engine.batch import Batch, remove_batch_files
from rat.engine.catalog import io_properties
from rat.engine.config import STRATEGY_KEYS, PipelineConfig, build_config, strip_annotations
from rat.engine.pyexec import PyGlobals, PythonError, check_source, run_pipeline
from rat.engine.render import CompileError, RenderContext, render
from rat.engine.sqlcheck import single_select
from rat.engine.strategies import STRATEGIES
from rat.engine.write import (
    BATCH,
    Strategy,
    WriteContext,
    WriteError,
    WritePlan,
    iceberg_safe_select,
    partition_warning,
)

if TYPE_CHECKING:
    import duckdb

ENTRY_FILES = ("pipeline.sql", "pipeline.py")
PY_RESULT = "__rat_py_result"


class RunHost(Protocol):
    """What a run asks of the process that owns state and the catalog."""

    def table_state(self, ident: str) -> TableState | None: ...

    def landing_files(self, namespace: str, zone: str) -> list[str]:
        """URIs of the zone's unprocessed top-level files (recorded for archiving)."""

    def prepare_stage(self, req: StageRequest) -> StageState: ...

    def commit_stage(self, req: CommitRequest) -> StageState: ...

    def log(self, level: str, message: str) -> None: ...

    def phase(self, name: str) -> None: ...


class RunFailed(Exception):
    """A user-facing run failure (compile, execute or write)."""


class Phases:
    def __init__(self, host: RunHost, spec: RunSpec) -> None:
        self.host = host
        self.spec = spec
        self.profiles: list[PhaseProfile] = []

    @contextmanager
    def phase(self, name: str, *, announce: bool = True) -> Iterator[dict[str, Any]]:
        """Time phase `name`; `announce=False` leaves telling the host to the caller."""
        if announce:
            self.host.phase(name)
        meta: dict[str, Any] = {}
        start = time.perf_counter()
        try:
            extensions.run_hooks(f"pre_{name}", self.spec, meta)
            yield meta
            extensions.run_hooks(f"post_{name}", self.spec, meta)
        finally:
            self.profiles.append(PhaseProfile(
                name=name, duration_ms=int((time.perf_counter() - start) * 1000), metadata=meta))


    def move_time(self, source: str, target: str, ms: int) -> None:
        """Count `ms` of phase `source` under `target` (a streamed write's query is execute)."""
        by_name = {p.name: p for p in self.profiles}
        moved = min(ms, by_name[source].duration_ms)
        by_name[source].duration_ms -= moved
        by_name[target].duration_ms += moved


def entry_file(files: dict[str, str]) -> str:
    entries = [f for f in files if f in ENTRY_FILES]
    if len(entries) != 1:
        raise RunFailed("a pipeline needs exactly one entry file (pipeline.sql or pipeline.py)")
    return entries[0]


def load_config(spec: RunSpec) -> tuple[str, PipelineConfig]:
    entry = entry_file(spec.files)
    result = build_config(spec.files[entry], spec.files.get("config.yaml"),
                          python=entry.endswith(".py"), strategies=STRATEGY_KEYS)
    if result.errors:
        raise RunFailed("invalid pipeline config: " + "; ".join(result.errors))
    if result.config.merge_strategy not in STRATEGIES:
        raise RunFailed(f"merge_strategy {result.config.merge_strategy!r} is not available")
    return entry, result.config


class Resolver:
    """ref()/this/landing_zone() for one run: each name resolves once, so the run is consistent."""

    def __init__(self, spec: RunSpec, host: RunHost) -> None:
        self.spec = spec
        self.host = host
        self.ident = f"{spec.namespace}.{spec.layer}.{spec.name}"
        self._tables: dict[str, TableState | None] = {}
        self.landing: list[str] = []

    def state(self, ident: str) -> TableState | None:
        if ident not in self._tables:
            self._tables[ident] = self.host.table_state(ident)
        return self._tables[ident]

    def qualify(self, name: str) -> str:
        parts = name.split(".")
        if len(parts) == 2:
            return f"{self.spec.namespace}.{name}"
        if len(parts) == 3:
            return name
        raise CompileError(f"ref({name!r}): use 'layer.name' or 'namespace.layer.name'")

    def ref(self, name: str) -> str:
        ident = self.qualify(str(name))
        state = self.state(ident)
        if state is None or not state.published:
            raise CompileError(f"ref({name!r}): table {ident} does not exist or has no published data")
        return scan_expr(state)

    def this(self) -> str:
        state = self.state(self.ident)
        if state is None or not state.published:
            raise CompileError(
                f"this: table {self.ident} does not exist yet; guard it with "
                "{% if is_incremental() and watermark_value %}")
        return scan_expr(state)

    def landing_zone(self, zone: str) -> str:
        files = self.host.landing_files(self.spec.namespace, str(zone))
        self.landing.extend(files)
        return self.spec.storage.uri(f"{self.spec.namespace}/landing/{zone}/*")


def scan_expr(state: TableState) -> str:
    pinned = f", snapshot_from_id={state.snapshot_id}" if state.snapshot_id is not None else ""
    return f"iceberg_scan({duck.sql_str(state.metadata_location)}{pinned})"


def watermark(con: duckdb.DuckDBPyConnection, resolver: Resolver, column: str) -> str | None:
    state = resolver.state(resolver.ident)
    if not column or state is None or not state.published:
        return None
    row = con.execute(
        f"SELECT CAST(MAX({duck.quote_ident(column)}) AS VARCHAR) FROM {scan_expr(state)}"
    ).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def render_context(config: PipelineConfig, resolver: Resolver, run_started_at: str,
                   watermark_value: str | None, this: Callable[[], str]) -> RenderContext:
    spec = resolver.spec
    return RenderContext(
        namespace=spec.namespace, layer=spec.layer, name=spec.name,
        merge_strategy=config.merge_strategy, run_started_at=run_started_at,
        ref=resolver.ref, landing_zone=resolver.landing_zone, this=this,
        watermark_value=watermark_value, helpers=dict(extensions.JINJA_HELPERS))


def compile_sql(source: str, ctx: RenderContext) -> str:
    return single_select(render(strip_annotations(source), ctx))


class Compiled(msgspec.Struct, kw_only=True):
    """The compile phase's output: rendered SQL, or the Python source and its globals."""

    sql: str = ""
    python: str = ""
    globals: PyGlobals | None = None


class Attempt:
    """Runs the phases of one attempt, collecting profiles and the result."""

    _batch: Batch  # set when the batch is materialized (execute phase)

    def __init__(self, spec: RunSpec, host: RunHost) -> None:
        self.spec = spec
        self.host = host
        self.phases = Phases(host, spec)
        self.resolver = Resolver(spec, host)
        self.result = RunResult(ok=False)
        self.watermark_value: str | None = None
        self._query_ms = 0  # a streamed batch's query time, spent inside the write's COPY

    def connect(self) -> duckdb.DuckDBPyConnection:
        limits = self.spec.limits
        con = duck.connect(memory_limit=limits.memory_limit, threads=limits.threads,
                           temp_dir=limits.scratch_dir or None, storage=self.spec.storage)
        allowed = list(self.spec.readable) or [
            self.spec.warehouse, self.spec.storage.uri(f"{self.spec.namespace}/landing")]
        if limits.scratch_dir:
            allowed.append(limits.scratch_dir)
        duck.lock_down(con, allowed)
        return con

    def execute(self) -> RunResult:
        con = self.connect()
        try:
            self._phases(con)
            self.result.ok = True
        except (RunFailed, CompileError, WriteError, PythonError) as exc:
            self.result.error = str(exc)
        except Exception as exc:
            self.result.error = describe_error(exc, self.spec.limits.scratch_dir)
        finally:
            con.close()
            remove_batch_files(self.spec.limits.scratch_dir)
            self.result.phases = self.phases.profiles
            self.result.landing_files = self.resolver.landing
        return self.result

    def _phases(self, con: duckdb.DuckDBPyConnection) -> None:
        entry, config = self.load()
        compiled = self.compile(con, entry, config)
        strategy = STRATEGIES[config.merge_strategy]()
        with self.phases.phase("execute") as meta:
            rows = self.materialize(con, compiled, stream=strategy.single_pass)
            if rows is None:
                meta["streamed"] = True
                self.host.log("info", "the query streams into the table's data files")
            else:
                meta["rows"] = rows
                self.host.log("info", f"query produced {rows} rows")
        streamed = rows is None
        try:
            with self.phases.phase("write", announce=not streamed) as meta:
                self._write(con, config, strategy, rows, meta)
        finally:
            if streamed:
                self.phases.move_time("write", "execute", self._query_ms)
        self.run_quality(con, config)

    @contextmanager
    def _streamed_query(self) -> Iterator[None]:
        """Wrap the COPY that runs a streamed batch's query.

        The run stays in `execute` until the COPY is done, then is in `write` (committing); the
        COPY's time is kept for the execute profile.
        """
        start = time.perf_counter()
        try:
            yield
        finally:
            self._query_ms += int((time.perf_counter() - start) * 1000)
            execute = next(p for p in self.phases.profiles if p.name == "execute")
            execute.metadata["query_ms"] = self._query_ms
        self.host.phase("write")

    def load(self) -> tuple[str, PipelineConfig]:
        with self.phases.phase("load") as meta:
            entry, config = load_config(self.spec)
            meta["files"] = len(self.spec.files)
            meta["merge_strategy"] = config.merge_strategy
        return entry, config

    def compile(self, con: duckdb.DuckDBPyConnection, entry: str,
                config: PipelineConfig) -> Compiled:
        """Resolve refs once and render the SQL, or prepare the Python globals."""
        with self.phases.phase("compile"):
            self.watermark_value = watermark(con, self.resolver, config.watermark_column)
            source = self.spec.files[entry]
            if entry == "pipeline.py":
                problems = check_source(source)
                if problems:
                    raise RunFailed(f"pipeline.py {problems[0]}")
                return Compiled(python=source, globals=self._py_globals(config))
            ctx = render_context(config, self.resolver, self.spec.run_started_at,
                                 self.watermark_value, self.resolver.this)
            return Compiled(sql=compile_sql(source, ctx))

    def _py_globals(self, config: PipelineConfig) -> PyGlobals:
        state = self.resolver.state(self.resolver.ident)
        return PyGlobals(
            ref=self.resolver.ref, landing_zone=self.resolver.landing_zone,
            this=scan_expr(state) if state is not None and state.published else None,
            run_started_at=self.spec.run_started_at, watermark_value=self.watermark_value,
            is_incremental=config.merge_strategy == "incremental", config=config)

    def materialize(self, con: duckdb.DuckDBPyConnection, compiled: Compiled, *,
                    stream: bool = False) -> int | None:
        """Create the batch from the SQL or the Python `result`; return its row count.

        With `stream` a SQL batch is only defined, not stored (None: rows not known yet).
        """
        if compiled.globals is None:
            return self._materialize(con, compiled.sql, stream=stream)
        table = run_pipeline(compiled.python, con, compiled.globals, self.host.log)
        con.register(PY_RESULT, table)
        try:
            return self._materialize(con, f"SELECT * FROM {PY_RESULT}")
        finally:
            con.unregister(PY_RESULT)

    def _materialize(self, con: duckdb.DuckDBPyConnection, sql: str, *,
                     stream: bool = False) -> int | None:
        safe_sql, _names = iceberg_safe_select(con, sql)
        self._batch = Batch(con, self.spec.limits.scratch_dir)
        if stream:
            self._batch.stream(safe_sql)
            return None
        return self._batch.store(safe_sql)

    def _write(self, con: duckdb.DuckDBPyConnection, config: PipelineConfig, strategy: Strategy,
               rows: int | None, meta: dict[str, Any]) -> None:
        strategy.check(con, config)
        if rows == 0 and not strategy.writes_empty:
            self.host.log("info", "no rows: nothing to write")
            self.warn(*strategy.empty_warnings(config))
            meta.update(rows_written=0, rows_deleted=0, files_added=0, files_removed=0,
                        files_rewritten=0)
            return
        start = time.perf_counter()
        stage = self._stage(con, config, strategy)
        ctx = WriteContext(con=con, config=config, stage=stage, table=self._staged_table(stage),
                           batch=self._batch, run_id=self.spec.run_id,
                           run_started_at=self.spec.run_started_at, log=self.host.log,
                           query=self._streamed_query if rows is None else None)
        drift = None if stage.created else partition_warning(ctx.table, config)
        if drift:
            self.warn(drift)
        staged = time.perf_counter()
        plan = strategy.plan(ctx)
        planned = time.perf_counter()
        self._commit(stage, plan, config, meta)
        meta.update(stage_ms=int((staged - start) * 1000), plan_ms=int((planned - staged) * 1000),
                    commit_ms=int((time.perf_counter() - planned) * 1000))

    def warn(self, *messages: str) -> None:
        """Warnings go into the result and the run log (the result's list alone is not shown)."""
        for message in messages:
            self.host.log("warn", message)
            self.result.warnings.append(message)

    def _commit(self, stage: StageState, plan: WritePlan, config: PipelineConfig,
                meta: dict[str, Any]) -> None:
        """Commit the plan as one snapshot on the run's branch; record its counts."""
        faults.point(faults.BEFORE_COMMIT, run_id=self.spec.run_id, added_files=plan.added_files)
        self.result.stage = self.host.commit_stage(CommitRequest(
            ident=self.resolver.ident, branch=stage.branch, removed_files=plan.removed_files,
            added_files=plan.added_files, properties=self._snapshot_properties(config)))
        self.result.committed = True
        self.result.rows_written = plan.rows_written
        self.warn(*plan.warnings)
        meta.update(rows_written=plan.rows_written, rows_deleted=plan.rows_deleted,
                    files_added=len(plan.added_files), files_removed=len(plan.removed_files),
                    files_rewritten=plan.files_rewritten, **plan.counters)
        self.host.log("info", f"staged {plan.rows_written} new rows in {len(plan.added_files)} "
                              f"files (deleted {plan.rows_deleted} rows, removed "
                              f"{len(plan.removed_files)} files)")

    def _stage(self, con: duckdb.DuckDBPyConnection, config: PipelineConfig,
               strategy: Strategy) -> StageState:
        """Create or evolve the table and open the run's branch."""
        arrow_schema = con.execute(f"SELECT * FROM {BATCH} LIMIT 0").to_arrow_table().schema
        stage = self.host.prepare_stage(StageRequest(
            ident=self.resolver.ident, run_id=self.spec.run_id,
            arrow_schema=strategy.table_schema(arrow_schema, config).serialize().to_pybytes(),
            partition_by=[{"column": p.column, "transform": p.transform}
                          for p in config.partition_by],
            replace_schema=strategy.replace_schema, table_properties={}))
        # Known before anything is committed, so a failed write still drops the branch and
        # puts back the pre-run schema.
        self.result.stage = stage
        return stage

    def _staged_table(self, stage: StageState) -> Any:
        from pyiceberg.table import StaticTable

        return StaticTable.from_metadata(stage.metadata_location,
                                         properties=io_properties(self.spec.storage))

    def _snapshot_properties(self, config: PipelineConfig) -> dict[str, str]:
        return {"rat.run_id": self.spec.run_id,
                "rat.pipeline_version": str(self.spec.version_number or 0),
                "rat.merge_strategy": config.merge_strategy, "rat.operation": "write"}

    def run_quality(self, con: duckdb.DuckDBPyConnection, config: PipelineConfig) -> None:
        """Run the version's tests against the staged snapshot (`this` and refs to itself)."""
        with self.phases.phase("quality") as meta:
            staged = self._staged_scan()
            if staged is None:
                self.host.log("info", "no table to test: quality tests skipped")
                meta["tests"] = 0
                return
            tests = quality.collect(self.spec.files, config, touched=BATCH)
            ctx = render_context(config, StagedResolver(self.resolver, staged),
                                 self.spec.run_started_at, self.watermark_value, lambda: staged)
            runner = quality.TestRunner(con, ctx, log=self.host.log,
                                        timeout_seconds=self.spec.limits.quality_timeout_seconds)
            self.result.quality = runner.run_all(tests)
            meta.update(quality.summary(self.result.quality))

    def _staged_scan(self) -> str | None:
        """The staged snapshot, or the published one when the run staged nothing (a no-op)."""
        stage = self.result.stage
        if stage is not None and stage.snapshot_id is not None:
            return scan_expr(TableState(ident=stage.ident, metadata_location=stage.metadata_location,
                                        snapshot_id=stage.snapshot_id))
        state = self.resolver.state(self.resolver.ident)
        return scan_expr(state) if state is not None and state.published else None


class StagedResolver(Resolver):
    """ref() as in the run, except that the pipeline's own table is the staged snapshot."""

    def __init__(self, base: Resolver, staged: str) -> None:
        super().__init__(base.spec, base.host)
        self._tables = base._tables
        self.landing = base.landing
        self.staged = staged

    def ref(self, name: str) -> str:
        if self.qualify(str(name)) == self.ident:
            return self.staged
        return super().ref(name)


def describe_error(exc: Exception, scratch_dir: str = "") -> str:
    text = str(exc).strip() or type(exc).__name__
    if "No space left on device" in text:
        where = "the run's scratch directory" if scratch_dir and scratch_dir in text \
            else "a volume the run writes to"
        text = (f"out of disk space in {where}; free space there (scratch lives under "
                f"RAT_DATA_DIR/tmp) or make the batch smaller: {text}")
    return text if len(text) < 4000 else text[:4000] + "…"


def execute_run(spec: RunSpec, host: RunHost) -> RunResult:
    """Execute one attempt of a run; never raises for user errors (they go into the result)."""
    return Attempt(spec, host).execute()

