"""What /metrics reports besides HTTP: runs, queue, workers, leader duties, DB pool, event loop.

Cheap in-process figures are read when scraped (gauges with a `source`); platform-state figures
come from Postgres at scrape time; run durations and outcomes are counted from run events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from rat import __version__
from rat.core.events import Event, EventBus
from rat.core.metrics import Labels, Registry
from rat.db.database import Database
from rat.ops.stats import state_stats
from rat.runtime.leader import Leader
from rat.runtime.workers import WorkerPool

log = logging.getLogger(__name__)
LOOP_PROBE_SECONDS = 0.5
RUN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
               3600.0, 7200.0)
PluginHealth = Callable[[], dict[str, bool]]


def _rss_bytes() -> float:
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 0.0


class Telemetry:
    def __init__(self, registry: Registry, *, db: Database, pools: list[WorkerPool],
                 leader: Leader | None, events: EventBus,
                 active_runs: Callable[[], int]) -> None:
        self.registry = registry
        self.db = db
        self.pools = pools
        self.leader = leader
        self.plugin_health: PluginHealth | None = None
        self._started: dict[str, float] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._define_process(registry)
        self._define_runtime(registry, active_runs)
        self._define_state(registry)
        events.subscribe(self._on_run_event, ("run_started", "run_completed", "run_cancelled"))

    def _define_process(self, r: Registry) -> None:
        started = time.time()
        r.gauge("rat_build_info", "RAT version.", ("version",), lambda: {(__version__,): 1.0})
        r.gauge("rat_process_start_time_seconds", "Start time (Unix seconds).",
                source=lambda: {(): started})
        r.gauge("rat_process_resident_memory_bytes", "Resident memory of the server process.",
                source=lambda: {(): _rss_bytes()})
        self.loop_lag = r.gauge("rat_event_loop_lag_seconds",
                                "How late the event loop ran a 0.5 s timer (last probe).")
        self.loop_lag_hist = r.histogram("rat_event_loop_lag_probe_seconds",
                                         "Event-loop lag, every probe.")

    def _define_runtime(self, r: Registry, active_runs: Callable[[], int]) -> None:
        r.gauge("rat_runs_active", "Runs executing in this process.",
                source=lambda: {(): float(active_runs())})
        r.gauge("rat_worker_pool_size", "Configured workers per pool.", ("pool",),
                lambda: {(p.kind,): float(p.size) for p in self.pools})
        r.gauge("rat_worker_pool_busy", "Workers running a job.", ("pool",),
                lambda: {(p.kind,): float(p.busy) for p in self.pools})
        r.gauge("rat_worker_pool_alive", "Worker processes alive.", ("pool",),
                lambda: {(p.kind,): float(p.alive) for p in self.pools})
        r.gauge("rat_queries_active", "Console queries executing.",
                source=lambda: {(): float(sum(p.busy for p in self.pools if p.kind == "query"))})
        r.gauge("rat_leader", "1 while this process holds the leader lock.",
                source=lambda: {(): float(bool(self.leader and self.leader.is_leader))})
        r.gauge("rat_leader_duty_last_run_timestamp_seconds",
                "When each leader duty (scheduler, reaper, lease monitor, …) last ran.", ("duty",),
                self._duty_times)
        r.gauge("rat_db_pool_size", "Open Postgres connections in the pool.",
                source=lambda: {(): float(self.db.pool.get_size())})
        r.gauge("rat_db_pool_in_use", "Pool connections checked out.",
                source=lambda: {(): float(self.db.pool.get_size() - self.db.pool.get_idle_size())})
        r.gauge("rat_db_pool_max", "Pool size limit (RAT_DB_POOL_SIZE).",
                source=lambda: {(): float(self.db.pool.get_max_size())})
        r.gauge("rat_plugin_up", "1 when a plugin is healthy.", ("plugin",), self._plugins)
        self.completed = r.counter("rat_runs_completed_total", "Runs that reached a terminal status.",
                                   ("status",))
        self.durations = r.histogram("rat_run_duration_seconds",
                                     "Run wall time from first start to terminal status.",
                                     ("status",), RUN_BUCKETS)

    def _define_state(self, r: Registry) -> None:
        self.runs = r.gauge("rat_runs", "Runs in the database per status.", ("status",))
        self.queue = r.gauge("rat_run_queue_depth", "Runs waiting: pending or parked for retry.",
                             ("state",))
        self.oldest = r.gauge("rat_run_queue_oldest_seconds", "Age of the oldest pending run.")
        self.lag = r.gauge("rat_scheduler_lag_seconds",
                           "How overdue the most overdue enabled schedule is.")
        self.state_ok = r.gauge("rat_state_scrape_ok",
                                "1 when the database figures in this scrape are fresh.")

    def _duty_times(self) -> dict[Labels, float]:
        if self.leader is None:
            return {}
        offset = time.time() - time.monotonic()
        return {(d.name,): d.last_run + offset for d in self.leader.duties if d.last_run}

    def _plugins(self) -> dict[Labels, float]:
        if self.plugin_health is None:
            return {}
        return {(name,): float(up) for name, up in self.plugin_health().items()}

    def _on_run_event(self, event: Event) -> None:
        run_id = str(event.data.get("run_id", ""))
        if event.type == "run_started":
            # Retries emit run_started again; the duration counts from the first attempt.
            self._started.setdefault(run_id, time.monotonic())
            return
        status = str(event.data.get("status") or "cancelled")
        self.completed.inc(status)
        started = self._started.pop(run_id, None)
        if started is not None:
            self.durations.observe(time.monotonic() - started, status)

    async def scrape(self) -> str:
        try:
            stats = await state_stats(self.db)
        except Exception:
            log.warning("metrics: cannot read platform state", exc_info=True)
            self.state_ok.set(0)
        else:
            self.runs.replace({(k,): float(v) for k, v in stats.runs_by_status.items()})
            self.queue.replace({("pending",): float(stats.pending),
                                ("retry_wait",): float(stats.retry_wait)})
            self.oldest.set(stats.oldest_pending_seconds)
            self.lag.set(stats.scheduler_lag_seconds)
            self.state_ok.set(1)
        return self.registry.render()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._probe_loop(), name="rat-loop-lag")

    async def _probe_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(LOOP_PROBE_SECONDS)
            lag = max(0.0, loop.time() - before - LOOP_PROBE_SECONDS)
            self.loop_lag.set(lag)
            self.loop_lag_hist.observe(lag)

    async def stop(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
