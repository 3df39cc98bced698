"""The run dispatcher: claim pending runs from Postgres and execute each in a warm worker.

Per run:
1. Claim with FOR UPDATE SKIP LOCKED (new lease token, attempt + 1).
2. Load the version's files, build the RunSpec, lease a worker, serve its catalog RPCs in threads,
   stream its logs into run_logs, renew the lease every heartbeat.
3. On success, publish under the fence: lock the run row (lease token matches, not cancelled),
   fast-forward main in the catalog, mark success, all before releasing the row lock.
4. On failure, discard the staged branch; retry after the delay while attempts remain.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import msgspec

from rat.config import Settings
from rat.core.context import RUN_ID
from rat.core.events import EventBus
from rat.core.specs import (
    CommitRequest,
    EngineLimits,
    PhaseProfile,
    RunResult,
    RunSpec,
    StageRequest,
    StorageSpec,
)
from rat.core.timefmt import utcnow
from rat.db.database import Conn, Database
from rat.db.queries import load_queries
from rat.engine import quality
from rat.engine.catalog import ConcurrentChange, IcebergTables, branch_name
from rat.engine.config import build_config
from rat.pipelines.models import Pipeline
from rat.pipelines.service import PipelinesService
from rat.plugins.protocols import ReadScope
from rat.runs.models import Claimed
from rat.runtime.jobaccess import JobAccess
from rat.runtime.runlog import RunLogWriter
from rat.runtime.workers import JobFailed, WorkerDied, WorkerPool, WorkerProcess

log = logging.getLogger(__name__)
Q = load_queries("rat.runs")
POLL_SECONDS = 1.0
CANCEL_GRACE_SECONDS = 5.0
# After the grace period, how long to wait for killed runs to be requeued before giving up
# (their leases then expire and the next start reconciles them).
REQUEUE_WAIT_SECONDS = 15.0

ResultHandler = Callable[["RunContext", RunResult], Awaitable[object]]
LandingLister = Callable[[str, str], Awaitable[list[str]]]


class RunContext:
    """One claimed attempt: its run row, pipeline, log writer and outcome."""

    def __init__(self, claimed: Claimed, pipeline: Pipeline, logs: RunLogWriter) -> None:
        self.claimed = claimed
        self.pipeline = pipeline
        self.logs = logs
        self.worker: WorkerProcess | None = None
        self.cancelled = False
        # Set when a graceful shutdown's grace period ran out: the attempt is void and the run
        # goes back to the queue for the next server start.
        self.requeue = False
        self.retry_delay = int((pipeline.config or {}).get("retry_delay_seconds", 30))
        self.scope: ReadScope | None = None

    @property
    def run_id(self) -> uuid.UUID:
        return self.claimed.id

    @property
    def ident(self) -> str:
        return self.pipeline.ident


def quality_summary(result: RunResult) -> dict[str, int] | None:
    return quality.summary(result.quality) if result.quality else None


def gate_failures(result: RunResult) -> list[str]:
    """Error-severity tests that failed, each with its count and why (for the run's error)."""
    out = []
    for q in result.quality:
        if q.severity != "error" or q.status == "pass":
            continue
        if q.status == "error":
            out.append(f"{q.test_name} (error: {q.message})")
        else:
            out.append(f"{q.test_name} ({q.row_count} violating rows"
                       + (f": {q.message})" if q.message else ")"))
    return out


def retry_settings(files: dict[str, str]) -> tuple[int, int]:
    """(max_retries, retry_delay_seconds) of the files the run executes (annotations honoured)."""
    entry = "pipeline.py" if "pipeline.py" in files else "pipeline.sql"
    config = build_config(files.get(entry, ""), files.get("config.yaml"),
                          python=entry == "pipeline.py").config
    return config.max_retries, config.retry_delay_seconds


class Dispatcher:
    def __init__(self, *, settings: Settings, db: Database, pipelines: PipelinesService,
                 tables: IcebergTables, pool: WorkerPool, events: EventBus,
                 storage_spec: StorageSpec, warehouse: str, landing: LandingLister,
                 access: JobAccess | None = None) -> None:
        self.settings = settings
        self.db = db
        self.pipelines = pipelines
        self.tables = tables
        self.pool = pool
        self.events = events
        self.storage_spec = storage_spec
        self.warehouse = warehouse
        self.landing = landing
        self.access = access
        self.worker_id = f"{socket.gethostname()}:{id(self):x}"
        self.result_handlers: list[ResultHandler] = []
        self._active: dict[uuid.UUID, RunContext] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()
        self._stopping = False
        self._drain_deadline: float | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._listener: Conn | None = None
        self._slots = asyncio.Semaphore(pool.size)

    @property
    def active_count(self) -> int:
        return len(self._active)

    async def start(self) -> None:
        await self._listen()
        self._loop_task = asyncio.create_task(self._loop(), name="rat-dispatcher")

    async def _listen(self) -> None:
        try:
            self._listener = await asyncpg.connect(self.db.dsn)
            await self._listener.add_listener("rat_runs", lambda *_: self.wake())
        except (OSError, asyncpg.PostgresError):
            log.warning("cannot LISTEN for runs; polling every %.0f s", POLL_SECONDS)

    def wake(self) -> None:
        self._wake.set()

    def drain(self, grace: float) -> None:
        """Stop claiming runs now; running ones get `grace` seconds from now (graceful shutdown)."""
        if self._drain_deadline is None:
            self._drain_deadline = asyncio.get_running_loop().time() + grace
            log.info("draining: no new runs are claimed; %d running", len(self._active))
        self._stopping = True
        self.wake()

    async def _loop(self) -> None:
        while True:
            await self._slots.acquire()
            if self._stopping:
                self._slots.release()
                return
            claimed = await self._claim_safely()
            if claimed is None:
                self._slots.release()
                await self._sleep()
                continue
            task = asyncio.create_task(self._run(claimed), name=f"rat-run-{claimed.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _sleep(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    async def _claim_safely(self) -> Claimed | None:
        try:
            return await self.db.one(Q["claim_next_run"], self.worker_id, uuid.uuid4(),
                                     float(self.settings.lease_seconds), into=Claimed)
        except asyncpg.UniqueViolationError:
            return None  # another dispatcher claimed a run of the same pipeline first
        except Exception:
            log.exception("claiming a run failed")
            return None

    async def _run(self, claimed: Claimed) -> None:
        RUN_ID.set(str(claimed.id))  # task-local: every log line of this run carries its id
        try:
            await self._execute(claimed)
        except Exception:
            log.exception("run %s crashed in the dispatcher", claimed.id)
            await self._settle_crash(claimed)
        finally:
            self._active.pop(claimed.id, None)
            self._slots.release()
            self.wake()

    async def _settle_crash(self, claimed: Claimed) -> None:
        with contextlib.suppress(Exception):
            await self.db.execrows(Q["finish_run"], claimed.id, claimed.lease_token, "failed", 0,
                                   None, "internal error while running; see server logs", [],
                                   None, [])

    async def _execute(self, claimed: Claimed) -> None:
        pipeline = await self.pipelines.get_by_id(claimed.pipeline_id)
        logs = await RunLogWriter.open(self.db, claimed.id)
        ctx = RunContext(claimed, pipeline, logs)
        self._active[claimed.id] = ctx
        heartbeat = asyncio.create_task(self._heartbeat(ctx))
        await self.events.emit("run_started", run_id=str(claimed.id),
                               pipeline_id=str(pipeline.id))
        try:
            logs.write("info", f"attempt {claimed.attempt}/{claimed.max_attempts} of "
                               f"{pipeline.ident} (trigger {claimed.trigger})")
            result = await self._attempt(ctx)
            await self._conclude(ctx, result)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
            await logs.close()

    async def _attempt(self, ctx: RunContext) -> RunResult:
        try:
            files = await self.pipelines.run_files(ctx.pipeline, ctx.claimed.version_number)
        except Exception as exc:
            return RunResult(ok=False, error=f"cannot load pipeline files: {exc}")
        await self._apply_retry_settings(ctx, files)
        readable: tuple[str, ...] = ()
        jail = None
        scratch = Path(self.settings.data_path) / "tmp" / "runs" / str(ctx.run_id)
        if self.access is not None:
            ctx.scope = await self.access.scope(ctx.pipeline)
            readable = self.access.readable(ctx.scope, ctx.pipeline)
            jail = await self.access.jail(ctx.pipeline, readable, scratch)
        spec = self._spec(ctx, files, scratch, readable)
        try:
            async with self.pool.lease() as worker:
                ctx.worker = worker
                ctx.logs.write("debug", f"running on worker pid {worker.pid}")
                if ctx.cancelled or ctx.requeue:
                    return RunResult(ok=False, error="cancelled" if ctx.cancelled else "requeued")
                body = await worker.call("run", msgspec.msgpack.encode(spec),
                                         on_event=lambda m: self._on_event(ctx, m),
                                         rpc=lambda method, b: self._rpc(ctx, method, b),
                                         jail=jail)
        except (WorkerDied, JobFailed) as exc:
            stage_branch = branch_name(str(ctx.run_id))
            await asyncio.to_thread(self.tables.discard, ctx.ident, stage_branch)
            return RunResult(ok=False, error="cancelled" if ctx.cancelled else str(exc))
        finally:
            ctx.worker = None
        return msgspec.msgpack.decode(body, type=RunResult)

    async def _apply_retry_settings(self, ctx: RunContext, files: dict[str, str]) -> None:
        """Retries follow the config of the files this run executes, not the current draft."""
        max_retries, ctx.retry_delay = retry_settings(files)
        if 1 + max_retries != ctx.claimed.max_attempts:
            ctx.claimed.max_attempts = 1 + max_retries
            await self.db.exec(Q["set_max_attempts"], ctx.run_id, ctx.claimed.lease_token,
                               ctx.claimed.max_attempts)

    def _spec(self, ctx: RunContext, files: dict[str, str], scratch: Path,
              readable: tuple[str, ...]) -> RunSpec:
        entry = "pipeline.py" if "pipeline.py" in files else "pipeline.sql"
        return RunSpec(
            run_id=str(ctx.run_id), attempt=ctx.claimed.attempt,
            namespace=ctx.pipeline.namespace, layer=ctx.pipeline.layer, name=ctx.pipeline.name,
            pipeline_type="python" if entry == "pipeline.py" else "sql",
            version_number=ctx.claimed.version_number, files=files,
            run_started_at=utcnow().isoformat(timespec="microseconds"),
            storage=self.storage_spec, warehouse=self.warehouse, readable=readable,
            limits=EngineLimits(memory_limit=self.settings.worker_memory_limit,
                                threads=self.settings.worker_threads, scratch_dir=str(scratch),
                                quality_timeout_seconds=self.settings.quality_test_timeout_seconds))

    async def _on_event(self, ctx: RunContext, msg: dict[str, Any]) -> None:
        kind = msg.get("t")
        if kind == "log":
            ctx.logs.write(str(msg.get("level", "info")), str(msg.get("message", "")))
        elif kind == "phase":
            ctx.logs.write("debug", f"phase {msg.get('name')}")
            await self.db.exec(Q["set_phase"], ctx.run_id, ctx.claimed.lease_token,
                               str(msg.get("name")))

    async def _rpc(self, ctx: RunContext, method: str, body: Any) -> Any:
        if method == "table_state":
            if self.access is not None and not self.access.can_read(ctx.scope, ctx.pipeline,
                                                                    str(body)):
                return None  # the owner may not read it: "does not exist", like the API's 404
            state = await asyncio.to_thread(self.tables.state, str(body))
            return None if state is None else msgspec.to_builtins(state)
        if method == "landing_files":
            namespace, zone = body
            return await self.landing(str(namespace), str(zone))
        if method == "prepare_stage":
            req = msgspec.convert(body, StageRequest)
            self._check_ident(ctx, req.ident)
            req = msgspec.structs.replace(req, table_properties={
                **req.table_properties, "rat.pipeline_id": str(ctx.pipeline.id)})
            return msgspec.to_builtins(await asyncio.to_thread(self.tables.prepare_stage, req))
        if method == "commit_stage":
            commit = msgspec.convert(body, CommitRequest)
            self._check_ident(ctx, commit.ident)
            self._check_commit(ctx, commit)
            return msgspec.to_builtins(await asyncio.to_thread(self.tables.commit_stage, commit))
        raise ValueError(f"unknown request {method!r}")

    @staticmethod
    def _check_ident(ctx: RunContext, ident: str) -> None:
        if ident != ctx.ident:
            raise PermissionError(f"a run of {ctx.ident} cannot write {ident}")

    def _check_commit(self, ctx: RunContext, commit: CommitRequest) -> None:
        """A run commits only its own branch and data files under its own table's data dir.

        The worker runs pipeline code, so its requests are untrusted: adding another table's
        file to this one would let the pipeline read data its owner may not.
        """
        if commit.branch != branch_name(str(ctx.run_id)):
            raise PermissionError(f"a run cannot commit to branch {commit.branch}")
        data_dir = self.tables.location(ctx.ident).rstrip("/") + "/data/"
        for path in commit.added_files:
            if not path.startswith(data_dir) or "/../" in path or "/./" in path:
                raise PermissionError(f"a run cannot add {path}: not in {data_dir}")

    async def _heartbeat(self, ctx: RunContext) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            renewed = await self.db.execrows(Q["renew_lease"], ctx.run_id, ctx.claimed.lease_token,
                                             float(self.settings.lease_seconds))
            if not renewed and not ctx.cancelled:
                ctx.logs.write("error", "lease lost: stopping the worker")
                self._kill(ctx)
                return

    def cancel(self, run_id: uuid.UUID) -> None:
        """Stop a run's worker now: SIGTERM, then SIGKILL after 5 s."""
        ctx = self._active.get(run_id)
        if ctx is None:
            return
        ctx.cancelled = True
        ctx.logs.write("warn", "run cancelled by user")
        self._kill(ctx)

    def _kill(self, ctx: RunContext) -> None:
        worker = ctx.worker
        if worker is None:
            return
        worker.kill(signal.SIGTERM)
        asyncio.get_running_loop().call_later(CANCEL_GRACE_SECONDS, worker.kill, signal.SIGKILL)

    async def _conclude(self, ctx: RunContext, result: RunResult) -> None:
        if ctx.requeue and not result.ok and not ctx.cancelled:
            await self._requeue(ctx, result)
            return
        for handler in self.result_handlers:
            try:
                await handler(ctx, result)
            except Exception:
                log.exception("run result handler failed for %s", ctx.run_id)
        if ctx.cancelled:
            await self._discard(ctx, result)
            return
        failures = gate_failures(result)
        if result.ok and failures:
            result.ok = False
            result.error = "quality gate failed: " + "; ".join(failures)
        if result.ok:
            await self._publish(ctx, result)
        else:
            await self._fail(ctx, result)

    async def _discard(self, ctx: RunContext, result: RunResult) -> None:
        if result.stage is not None:
            await asyncio.to_thread(self.tables.discard, ctx.ident, result.stage.branch)

    async def _requeue(self, ctx: RunContext, result: RunResult) -> None:
        await self._discard(ctx, result)
        if await self.db.execrows(Q["requeue_run"], ctx.run_id, ctx.claimed.lease_token):
            ctx.logs.write("warn", "server shut down before the run finished: the attempt is "
                                   "discarded and the run is back in the queue")

    async def _publish(self, ctx: RunContext, result: RunResult) -> None:
        await self.db.exec(Q["set_phase"], ctx.run_id, ctx.claimed.lease_token, "publish")
        started = time.perf_counter()
        try:
            published, snapshot_id, data_snapshot = await self._publish_fenced(ctx, result,
                                                                               started)
        except ConcurrentChange as exc:
            result.ok, result.error = False, f"not published: {exc}"
            await self._fail(ctx, result)
            return
        if not published:
            return
        ctx.logs.write("info", f"published {result.rows_written} rows"
                               + (f" as snapshot {snapshot_id}" if snapshot_id else ""))
        await self._finalize(ctx, result, snapshot_id, data_snapshot)

    async def _publish_fenced(self, ctx: RunContext, result: RunResult,
                              started: float) -> tuple[bool, int | None, int | None]:
        """Fast-forward main and mark success while holding the run row (lease and cancel fence)."""
        stage = result.stage
        async with self.db.transaction() as conn:
            locked = await self.db.one(Q["lock_for_publish"], ctx.run_id, ctx.claimed.lease_token,
                                       conn=conn)
            if locked is None:
                ctx.logs.write("warn", "run was cancelled or lost its lease: not publishing")
                await self._discard(ctx, result)
                return False, None, None
            snapshot_id = None
            if stage is not None:
                snapshot_id = await asyncio.to_thread(
                    self.tables.publish, ctx.ident, stage.branch, stage.base_snapshot_id)
                # Readers (console views, ref()) must see the new snapshot before anyone can
                # observe the run as successful.
                await self.events.emit("table_changed", namespace=ctx.pipeline.namespace,
                                       layer=ctx.pipeline.layer, name=ctx.pipeline.name)
            data_snapshot = snapshot_id or await self._published_snapshot(ctx)
            version = ctx.claimed.version_number
            if version is not None and data_snapshot is not None:
                await self.pipelines.record_data_snapshot(ctx.pipeline.id, version,
                                                          data_snapshot, conn=conn)
            result.phases.append(PhaseProfile(
                name="publish", duration_ms=int((time.perf_counter() - started) * 1000),
                metadata={"snapshot_id": snapshot_id}))
            await self._finish(ctx, result, "success", snapshot_id, None, conn)
        return True, snapshot_id, data_snapshot

    async def _published_snapshot(self, ctx: RunContext) -> int | None:
        state = await asyncio.to_thread(self.tables.state, ctx.ident)
        return state.snapshot_id if state is not None and state.published else None

    async def _finalize(self, ctx: RunContext, result: RunResult, snapshot_id: int | None,
                        data_snapshot: int | None) -> None:
        """After success: tag the version's snapshot, tell subscribers. Never changes the status."""
        version = ctx.claimed.version_number
        if version is not None and data_snapshot is not None:
            try:
                await asyncio.to_thread(self.tables.tag, ctx.ident, f"rat_v{version}",
                                        data_snapshot)
            except Exception as exc:
                ctx.logs.write("warn", f"cannot tag snapshot {data_snapshot} as rat_v{version}: "
                                       f"{exc}")
        await self.events.emit("run_completed", run_id=str(ctx.run_id), status="success",
                               pipeline_id=str(ctx.pipeline.id), namespace=ctx.pipeline.namespace,
                               layer=ctx.pipeline.layer, name=ctx.pipeline.name,
                               snapshot_id=snapshot_id, version_number=version,
                               landing_files=result.landing_files)

    async def _finish(self, ctx: RunContext, result: RunResult, status: str,
                      snapshot_id: int | None, error: str | None,
                      conn: Conn | None = None) -> int:
        profiles = [msgspec.to_builtins(p) for p in result.phases]
        return await self.db.execrows(
            Q["finish_run"], ctx.run_id, ctx.claimed.lease_token, status, result.rows_written,
            snapshot_id, error, profiles, quality_summary(result), result.landing_files, conn=conn)

    async def _fail(self, ctx: RunContext, result: RunResult) -> None:
        await self._discard(ctx, result)
        error = result.error or "run failed"
        ctx.logs.write("error", error)
        max_attempts = max(ctx.claimed.max_attempts, 1)
        if ctx.claimed.attempt < max_attempts:
            delay = ctx.retry_delay
            profiles = [msgspec.to_builtins(p) for p in result.phases]
            parked = await self.db.execrows(Q["park_for_retry"], ctx.run_id,
                                            ctx.claimed.lease_token, float(delay), error, profiles)
            if parked:
                ctx.logs.write("warn", f"retrying in {delay} s (attempt "
                                       f"{ctx.claimed.attempt + 1}/{max_attempts})")
                return
        await self._finish(ctx, result, "failed", None, error)
        await self.events.emit("run_completed", run_id=str(ctx.run_id), status="failed",
                               pipeline_id=str(ctx.pipeline.id), error=error,
                               namespace=ctx.pipeline.namespace, layer=ctx.pipeline.layer,
                               name=ctx.pipeline.name)

    async def reconcile(self) -> int:
        """Settle running runs whose lease expired (their worker or server died). Leader duty."""
        count = 0
        for row in await self.db.many(Q["expired_running_runs"]):
            if row["id"] in self._active:
                continue
            ident = f"{row['namespace']}.{row['layer']}.{row['name']}"
            run_id = str(row["id"])
            snapshot = await asyncio.to_thread(self.tables.find_run_snapshot, ident, run_id)
            if snapshot is None:
                await asyncio.to_thread(self.tables.discard, ident, branch_name(run_id))
                changed = await self.db.execrows(Q["reconcile_run"], row["id"], "failed", None,
                                                 "worker lost: the run's worker or server died")
            else:
                changed = await self.db.execrows(Q["reconcile_run"], row["id"], "success",
                                                 snapshot, None)
            count += changed
        return count

    async def stop(self, grace: float) -> None:
        """Stop claiming; give running runs the rest of the grace period, then requeue them.

        A run still executing when the grace period ends has its worker killed; nothing of it
        was published (publishing happens here, in the parent), so it returns to `pending` and
        the next start runs it again. A run already publishing finishes normally.
        """
        self.drain(grace)
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._tasks:
            assert self._drain_deadline is not None  # noqa: S101 - set by drain()
            remaining = max(0.0, self._drain_deadline - asyncio.get_running_loop().time())
            _done, pending = await asyncio.wait(set(self._tasks), timeout=remaining)
            if pending:
                self._void_active()
                await asyncio.wait(pending, timeout=REQUEUE_WAIT_SECONDS)
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()

    def _void_active(self) -> None:
        for ctx in list(self._active.values()):
            ctx.requeue = True
            if ctx.worker is not None:
                ctx.logs.write("warn", "server shutting down: grace period over, stopping the run")
                ctx.worker.kill()
