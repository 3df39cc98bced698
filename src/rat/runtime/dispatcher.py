"""The run dispatcher: claim pending runs from Postgres and execute each in a warm worker.

Per run:
1. Claim with FOR UPDATE SKIP LOCKED (new lease token, attempt + 1).
2. Load the version's files, build the RunSpec, lease a worker, serve its catalog RPCs in threads,
   stream its logs into run_logs, renew the lease every heartbeat.
3. On success, publish under the fence: lock the run row (lease token matches, not cancelled),
   fast-forward main in the catalog, mark success, all before releasing the row lock.
4. On failure, discard the staged branch; retry after the delay while attempts remain.

Database blips: lease renewal, claiming and the final writes retry through them. A run whose lease
could not be renewed for most of a lease is stopped by this server (worker killed, attempt void)
before any other server may reap it, since reaping needs an expired lease.
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
from rat.db.retry import Outage, close_quietly, is_transient, retrying
from rat.engine import quality
from rat.engine.catalog import ConcurrentChange, IcebergTables, branch_name
from rat.engine.config import build_config
from rat.pipelines.models import Pipeline
from rat.pipelines.retention import DEFAULTS as RETENTION_DEFAULTS
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
LISTEN_RETRY_SECONDS = 5.0
WORKER_LOST = "worker lost: the run's worker or server died"

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
        # Loop time by which the lease must have been renewed, else the run is stopped (fenced).
        self.fence_at = 0.0
        self.fenced = False
        self.publishing = False
        self.publish_tried = False
        # Stuck-run timeout: loop time of the deadline once known; the error once it passed.
        self.timeout_at: float | None = None
        self.timeout_message = ""
        self.timed_out: str | None = None

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
        self._listener: asyncpg.Connection | None = None
        self._listen_retry_at = 0.0
        self._listen_outage = Outage(f"LISTEN for runs (polling every {POLL_SECONDS:.0f} s)", log)
        self._claim_outage = Outage("claiming runs", log)
        self._slots = asyncio.Semaphore(pool.size)

    @property
    def active_count(self) -> int:
        return len(self._active)

    async def start(self) -> None:
        await self._listen()
        self._loop_task = asyncio.create_task(self._loop(), name="rat-dispatcher")

    async def _listen(self) -> None:
        try:
            conn = await asyncio.wait_for(asyncpg.connect(self.db.dsn), POLL_SECONDS * 5)
        except Exception as exc:
            self._listen_outage.failed(exc)
            return
        try:
            await conn.add_listener("rat_runs", lambda *_: self.wake())
        except Exception as exc:
            self._listen_outage.failed(exc)
            await close_quietly(conn)
            return
        self._listener = conn
        self._listen_outage.recovered()

    async def _keep_listening(self) -> None:
        """LISTEN again once the connection dropped (Postgres restart); polling covers the gap."""
        if self._listener is not None and not self._listener.is_closed():
            return
        now = asyncio.get_running_loop().time()
        if now >= self._listen_retry_at:
            self._listen_retry_at = now + LISTEN_RETRY_SECONDS
            self._listener = None
            await self._listen()

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
            await self._keep_listening()
            claimed_at = asyncio.get_running_loop().time()
            claimed = await self._claim_safely()
            if claimed is None:
                self._slots.release()
                await self._sleep()
                continue
            task = asyncio.create_task(self._run(claimed, claimed_at),
                                       name=f"rat-run-{claimed.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _sleep(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    async def _claim_safely(self) -> Claimed | None:
        try:
            claimed = await self.db.one(Q["claim_next_run"], self.worker_id, uuid.uuid4(),
                                        float(self.settings.lease_seconds), into=Claimed)
        except asyncpg.UniqueViolationError:
            return None  # another dispatcher claimed a run of the same pipeline first
        except Exception as exc:
            if is_transient(exc):
                self._claim_outage.failed(exc)
            else:
                log.exception("claiming a run failed")
            return None
        self._claim_outage.recovered()
        return claimed

    def _fence_after(self) -> float:
        """Seconds after a renewal was sent by which the next one must succeed.

        The lease ends `lease_seconds` after Postgres ran the renewal, which is later than when it
        was sent; stopping a heartbeat earlier than that leaves a margin for the kill.
        """
        return float(self.settings.lease_seconds - self.settings.heartbeat_seconds)

    async def _run(self, claimed: Claimed, claimed_at: float) -> None:
        RUN_ID.set(str(claimed.id))  # task-local: every log line of this run carries its id
        try:
            await self._execute(claimed, claimed_at)
        except Exception as exc:
            if is_transient(exc):
                log.warning("run %s abandoned: the database was unavailable for its whole lease "
                            "(%s); the leader settles it", claimed.id, exc)
                return
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

    async def _execute(self, claimed: Claimed, claimed_at: float) -> None:
        fence_at = claimed_at + self._fence_after()
        loop = asyncio.get_running_loop()
        outage = Outage(f"starting run {claimed.id}", log)
        pipeline = await retrying(lambda: self.pipelines.get_by_id(claimed.pipeline_id), outage,
                                  give_up=lambda: loop.time() >= fence_at)
        logs = await retrying(lambda: RunLogWriter.open(self.db, claimed.id), outage,
                              give_up=lambda: loop.time() >= fence_at)
        ctx = RunContext(claimed, pipeline, logs)
        ctx.fence_at = fence_at
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
            files = await retrying(
                lambda: self.pipelines.run_files(ctx.pipeline, ctx.claimed.version_number),
                Outage(f"loading the files of run {ctx.run_id}", log),
                give_up=lambda: ctx.fenced)
        except Exception as exc:
            return RunResult(ok=False, error=f"cannot load pipeline files: {exc}")
        await retrying(lambda: self._apply_retry_settings(ctx, files),
                       Outage(f"starting run {ctx.run_id}", log), give_up=lambda: ctx.fenced)
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
            await self._discard_branch(ctx)
            return RunResult(ok=False, error="cancelled" if ctx.cancelled else str(exc))
        finally:
            ctx.worker = None
        return msgspec.msgpack.decode(body, type=RunResult)

    async def _apply_retry_settings(self, ctx: RunContext, files: dict[str, str]) -> None:
        """Retries follow the config of the files this run executes, not the current draft."""
        max_retries, ctx.retry_delay = retry_settings(files)
        if 1 + max_retries != ctx.claimed.max_attempts:
            await self.db.exec(Q["set_max_attempts"], ctx.run_id, ctx.claimed.lease_token,
                               1 + max_retries)
            ctx.claimed.max_attempts = 1 + max_retries

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

    async def _discard_branch(self, ctx: RunContext) -> None:
        """Drop the run's staged branch; if the catalog is unreachable the reaper drops it later."""
        try:
            await asyncio.to_thread(self.tables.discard, ctx.ident, branch_name(str(ctx.run_id)))
        except Exception as exc:
            log.warning("run %s: cannot drop its staged branch (%s); the reaper will", ctx.run_id,
                        exc)

    async def _on_event(self, ctx: RunContext, msg: dict[str, Any]) -> None:
        kind = msg.get("t")
        if kind == "log":
            ctx.logs.write(str(msg.get("level", "info")), str(msg.get("message", "")))
        elif kind == "phase":
            ctx.logs.write("debug", f"phase {msg.get('name')}")
            await self._set_phase(ctx, str(msg.get("name")))

    async def _set_phase(self, ctx: RunContext, phase: str) -> None:
        """Informational: a blip must not fail the run (the next phase or the finish overwrites it)."""
        try:
            await self.db.exec(Q["set_phase"], ctx.run_id, ctx.claimed.lease_token, phase)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("run %s: cannot record phase %s: %s", ctx.run_id, phase, exc)

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
        """Renew the lease every heartbeat, riding out database errors, until the fence time."""
        loop = asyncio.get_running_loop()
        outage = Outage(f"lease renewal of run {ctx.run_id}", log)
        while True:
            await asyncio.sleep(max(0.0, min(float(self.settings.heartbeat_seconds),
                                             ctx.fence_at - loop.time())))
            self._enforce_timeout(ctx)
            if loop.time() >= ctx.fence_at:
                self._fence(ctx)
                return
            sent = loop.time()
            try:
                renewed = await asyncio.wait_for(self._renew(ctx), ctx.fence_at - sent)
            except Exception as exc:
                outage.failed(exc)
                continue
            outage.recovered()
            ctx.fence_at = sent + self._fence_after()
            if not renewed and not ctx.cancelled:
                ctx.logs.write("error", "lease lost: stopping the worker")
                self._kill(ctx)
                return

    async def _renew(self, ctx: RunContext) -> int:
        renewed = await self.db.execrows(Q["renew_lease"], ctx.run_id, ctx.claimed.lease_token,
                                         float(self.settings.lease_seconds))
        if renewed and ctx.timeout_at is None:
            row = await self.db.one(Q["run_timeout"], ctx.run_id,
                                    RETENTION_DEFAULTS["stuck_run_timeout_minutes"])
            if row is not None:
                ctx.timeout_at = asyncio.get_running_loop().time() + float(row["seconds_left"])
                minutes = int(row["minutes"])
                ctx.timed_out = None
                ctx.timeout_message = (f"run timed out after {minutes} minute"
                                       f"{'' if minutes == 1 else 's'} "
                                       "(stuck_run_timeout_minutes)")
        return renewed

    def _enforce_timeout(self, ctx: RunContext) -> None:
        """The stuck-run timeout, checked every heartbeat by the server running the run."""
        if ctx.timeout_at is None or ctx.timed_out is not None or ctx.cancelled:
            return
        if asyncio.get_running_loop().time() < ctx.timeout_at:
            return
        ctx.timed_out = ctx.timeout_message
        ctx.logs.write("error", f"{ctx.timed_out}: stopping the worker")
        self._kill(ctx)

    def _fence(self, ctx: RunContext) -> None:
        """The lease could not be renewed in time: stop the run before another server may reap it.

        Nothing was published unless publishing had begun, so the attempt is void and the run
        goes back to the queue once the database answers (unless the leader settled it first).
        """
        if ctx.cancelled:
            return
        ctx.fenced = True
        ctx.requeue = not ctx.publishing
        message = (f"lease not renewed for {self._fence_after():.0f} s (database unreachable): "
                   "stopping the worker; this attempt is void")
        log.warning("run %s: %s", ctx.run_id, message)
        ctx.logs.write("error", message)
        if ctx.worker is not None:
            ctx.worker.kill(signal.SIGKILL)

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
        if ctx.fenced or (ctx.requeue and not result.ok and not ctx.cancelled):
            why = "its lease could not be renewed" if ctx.fenced else \
                "server shut down before the run finished"
            ctx.logs.write("warn", f"{why}: the attempt is discarded and the run is back in "
                                   "the queue")
            # A fenced run keeps trying to requeue for one more lease, then the leader settles it.
            await self._final(ctx, lambda: self._requeue(ctx, result),
                              grace=float(self.settings.lease_seconds))
            return
        for handler in self.result_handlers:
            try:
                await handler(ctx, result)
            except Exception:
                log.exception("run result handler failed for %s", ctx.run_id)
        if ctx.cancelled:
            await self._final(ctx, lambda: self._discard(ctx, result))
            return
        failures = gate_failures(result)
        if result.ok and failures:
            result.ok = False
            result.error = "quality gate failed: " + "; ".join(failures)
        if ctx.timed_out is not None:
            result.ok, result.error = False, ctx.timed_out
        if result.ok:
            await self._final(ctx, lambda: self._publish(ctx, result))
        else:
            await self._fail(ctx, result)

    async def _final(self, ctx: RunContext, write: Callable[[], Awaitable[None]], *,
                     grace: float = 0.0) -> None:
        """Run the final writes, retrying through a database blip while the lease holds.

        Once the run is fenced (the heartbeat gave up) retrying stops after `grace` seconds:
        the lease is expiring and the leader's reconciliation settles the run.
        """
        loop = asyncio.get_running_loop()
        try:
            await retrying(write, Outage(f"finishing run {ctx.run_id}", log),
                           give_up=lambda: ctx.fenced and loop.time() >= ctx.fence_at + grace)
        except Exception as exc:
            if not is_transient(exc):
                raise
            log.warning("run %s: database unavailable beyond its lease (%s); the leader settles "
                        "it", ctx.run_id, exc)

    async def _discard(self, ctx: RunContext, result: RunResult) -> None:
        if result.stage is not None:
            await asyncio.to_thread(self.tables.discard, ctx.ident, result.stage.branch)

    async def _requeue(self, ctx: RunContext, result: RunResult) -> None:
        await self._discard(ctx, result)
        with contextlib.suppress(Exception):  # before the row changes hands; retried on close
            await ctx.logs.flush()
        await self.db.execrows(Q["requeue_run"], ctx.run_id, ctx.claimed.lease_token)

    async def _publish(self, ctx: RunContext, result: RunResult) -> None:
        if ctx.fenced:
            return  # the heartbeat gave up between retries: the leader settles the run
        ctx.publishing = True
        await self.db.exec(Q["set_phase"], ctx.run_id, ctx.claimed.lease_token, "publish")
        with contextlib.suppress(Exception):  # earlier lines first; retried in _finish otherwise
            await ctx.logs.flush()
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
                snapshot_id = await self._publish_table(ctx, stage.branch, stage.base_snapshot_id)
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
            # Written before the terminal state: a finished run's log takes no new lines.
            ctx.logs.write("info", f"published {result.rows_written} rows"
                                   + (f" as snapshot {snapshot_id}" if snapshot_id else ""))
            await self._finish(ctx, result, "success", snapshot_id, None, conn)
        return True, snapshot_id, data_snapshot

    async def _publish_table(self, ctx: RunContext, branch: str, base: int | None) -> int:
        """Fast-forward main; a retry after a blip finds main already at this run's snapshot."""
        retry, ctx.publish_tried = ctx.publish_tried, True
        try:
            return await asyncio.to_thread(self.tables.publish, ctx.ident, branch, base)
        except ConcurrentChange:
            if not retry:
                raise
            done = await asyncio.to_thread(self.tables.find_run_snapshot, ctx.ident,
                                           str(ctx.run_id))
            if done is None:
                raise
            return done

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
                # The run is already terminal, so this goes to the server log, not the run's.
                log.warning("run %s: cannot tag snapshot %s as rat_v%s: %s", ctx.run_id,
                            data_snapshot, version, exc)
        await self.events.emit("run_completed", run_id=str(ctx.run_id), status="success",
                               pipeline_id=str(ctx.pipeline.id), namespace=ctx.pipeline.namespace,
                               layer=ctx.pipeline.layer, name=ctx.pipeline.name,
                               snapshot_id=snapshot_id, version_number=version,
                               landing_files=result.landing_files)

    async def _finish(self, ctx: RunContext, result: RunResult, status: str,
                      snapshot_id: int | None, error: str | None,
                      conn: Conn | None = None) -> int:
        profiles = [msgspec.to_builtins(p) for p in result.phases]
        await ctx.logs.flush(conn)  # before the terminal state closes the run's log
        return await self.db.execrows(
            Q["finish_run"], ctx.run_id, ctx.claimed.lease_token, status, result.rows_written,
            snapshot_id, error, profiles, quality_summary(result), result.landing_files, conn=conn)

    async def _fail(self, ctx: RunContext, result: RunResult) -> None:
        error = result.error or "run failed"
        ctx.logs.write("error", error)
        await self._final(ctx, lambda: self._park_or_fail(ctx, result, error))

    async def _park_or_fail(self, ctx: RunContext, result: RunResult, error: str) -> None:
        await self._discard(ctx, result)
        max_attempts = max(ctx.claimed.max_attempts, 1)
        if ctx.claimed.attempt < max_attempts and ctx.timed_out is None:
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
                changed = await self.db.execrows(
                    Q["reconcile_run"], row["id"], "failed", None, WORKER_LOST, "error",
                    "worker lost: the lease expired with no server renewing it (its worker or "
                    "server died, or lost the database); nothing was published")
            else:
                changed = await self.db.execrows(
                    Q["reconcile_run"], row["id"], "success", snapshot, None, "info",
                    f"settled as success after its server stopped: its snapshot {snapshot} "
                    "was already published to main")
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
            await close_quietly(self._listener)

    def _void_active(self) -> None:
        for ctx in list(self._active.values()):
            ctx.requeue = True
            if ctx.worker is not None:
                ctx.logs.write("warn", "server shutting down: grace period over, stopping the run")
                ctx.worker.kill()
