"""BM10: a bounded soak: one `rat serve` under steady light load, watched for leaks.

Issue 16 item 6. For `RAT_SOAK_MINUTES` (default 30): one pipeline run every 10 s (a 1,000-row
full refresh, each awaited) and 20 requests/s of mixed API reads (GET /pipelines, /runs,
/tables and a small POST /query, 5/s each on its own keep-alive connection). Retention is set
short (keep 20 runs per pipeline, reaper every minute) so run pruning happens during the soak.

Every 30 s a sample records:
- memory of the whole server: the `rat serve` process and its descendants (workers) plus the
  embedded Postgres (postmaster and backends; pg_ctl detaches it, so it is found through
  `postmaster.pid`), both as RSS (what the brief asks; it counts Postgres shared buffers once per
  backend that touched them) and as PSS (shared pages divided among their users), from /proc,
  and PSS per part (workers, Postgres) so that a drift can be placed;
- open file descriptors of the server process (/proc/<pid>/fd);
- Postgres client connections (pg_stat_activity, client backends other than the sampler's own,
  through the embedded DSN in the data directory) and the pool size from GET /metrics;
- the pipeline's run count (GET /runs total) and the reaper's cumulative `runs_pruned`.

Figures: memory drift = mean of the last 5 minutes against the first 5 minutes after a
`RAT_SOAK_WARMUP_MINUTES` (default 2) warm-up, reported with the warm-up window as floor (target
ratio 1.10, i.e. drift < 10 %); fd and connection spread (max - min after warm-up); pruning
observed (runs_pruned grew and the run count stayed bounded while more runs were created);
runs succeeded / failed; read requests and their errors. Loops are bounded by the soak deadline.
"""

from __future__ import annotations

import itertools
import os
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.harness import BenchContext, Result, Server, percentile, wait_run

MINUTES = float(os.environ.get("RAT_SOAK_MINUTES", "30"))
WARMUP_MINUTES = float(os.environ.get("RAT_SOAK_WARMUP_MINUTES", "2"))
WINDOW_MINUTES = float(os.environ.get("RAT_SOAK_WINDOW_MINUTES", "5"))
SAMPLE_SECONDS = 30.0
RUN_EVERY_SECONDS = 10.0
READS_PER_SECOND_EACH = 5.0  # four endpoints: 20 requests/s in all
KEEP_RUNS = 20
SQL = "SELECT range AS id, 'row ' || range AS label, now() AS at FROM range(1000)"
PIPELINE = {"namespace": "default", "layer": "bronze", "pipeline": "soak"}


@dataclass
class Sample:
    at: float  # minutes since the soak started (the sample's slot, not its exact time)
    rss: int
    pss: int
    server_rss: int
    workers_pss: int
    pg_pss: int
    fds: int
    pg_clients: int
    pool_size: float
    runs_total: int
    runs_pruned: int


@dataclass
class Tally:
    """Counters shared by the load threads (each field updated under `lock`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    run_status: Counter[str] = field(default_factory=Counter)
    run_errors: list[str] = field(default_factory=list)
    read_status: Counter[str] = field(default_factory=Counter)
    read_latencies: list[float] = field(default_factory=list)


# /proc ---------------------------------------------------------------------------------------

def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out.extend(int(c) for c in f.read().split())
    except OSError:
        pass
    return out


def _tree(root: int) -> list[int]:
    pids, todo = [], [root]
    while todo and len(pids) < 10_000:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(_children(pid))
    return pids


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in bytes of one process; (0, 0) when it has gone."""
    values = {"Rss:": 0, "Pss:": 0}
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                key, _, rest = line.partition(" ")
                if key in values:
                    values[key] = int(rest.split()[0]) * 1024
    except OSError:
        pass
    return values["Rss:"], values["Pss:"]


def _postmaster(data_dir: Path) -> int | None:
    try:
        return int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


# Postgres and API ------------------------------------------------------------------------------

def _pg_clients(data_dir: Path) -> int:
    import psycopg

    from rat.db.embedded import EmbeddedPostgres

    dsn = EmbeddedPostgres(data_dir / "pg").dsn
    with psycopg.connect(dsn, connect_timeout=10) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE backend_type = "
                           "'client backend' AND pid <> pg_backend_pid()").fetchone()
    return int(row[0]) if row else -1


def _metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return float("nan")


def _sample(server: Server, client: httpx.Client, at: float) -> Sample:
    assert server.proc is not None
    ours = _tree(server.proc.pid)
    postmaster = _postmaster(server.data_dir)
    pg = _tree(postmaster) if postmaster is not None and postmaster not in ours else []
    memory = [_memory(p) for p in ours + pg]
    metrics = httpx.get(f"{server.url}/metrics", timeout=30).text
    runs = client.get("/runs", params={"pipeline": "soak", "limit": 1}).json()
    status = client.get("/admin/retention/status").json()
    return Sample(at=at, rss=sum(m[0] for m in memory),
                  pss=sum(m[1] for m in memory), server_rss=_memory(server.proc.pid)[0],
                  workers_pss=sum(_memory(p)[1] for p in ours[1:]),
                  pg_pss=sum(_memory(p)[1] for p in pg),
                  fds=_fds(server.proc.pid), pg_clients=_pg_clients(server.data_dir),
                  pool_size=_metric(metrics, "rat_db_pool_size"),
                  runs_total=int(runs["total"]), runs_pruned=int(status["runs_pruned"]))


# load threads --------------------------------------------------------------------------------

def _runs(server: Server, deadline: float, tally: Tally) -> None:
    with server.client() as client:
        next_at = time.monotonic()
        while next_at < deadline:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += RUN_EVERY_SECONDS
            try:
                run_id = client.post("/runs", json=PIPELINE).json()["run_id"]
                status = str(wait_run(client, run_id, timeout=120)["status"])
            except (httpx.HTTPError, KeyError, ValueError, TimeoutError) as exc:
                status = "error"
                with tally.lock:
                    tally.run_errors.append(f"{type(exc).__name__}: {exc}"[:200])
            with tally.lock:
                tally.run_status[status] += 1
            while next_at < time.monotonic():  # a slow run: skip the missed slots, no burst
                next_at += RUN_EVERY_SECONDS


def _reads(server: Server, kind: str, deadline: float, tally: Tally) -> None:
    step = 1.0 / READS_PER_SECOND_EACH
    with server.client() as client:
        client.timeout = httpx.Timeout(30)
        next_at = time.monotonic()
        while next_at < deadline:
            time.sleep(max(0.0, next_at - time.monotonic()))
            next_at += step
            start = time.perf_counter()
            try:
                if kind == "query":
                    resp = client.post("/query", json={
                        "sql": "SELECT count(*) AS n, max(id) AS top FROM bronze.soak",
                        "limit": 10})
                else:
                    resp = client.get(f"/{kind}", params={"limit": 20})
                outcome = str(resp.status_code)
            except httpx.HTTPError as exc:
                outcome = type(exc).__name__
            with tally.lock:
                tally.read_status[outcome] += 1
                if outcome == "200":
                    tally.read_latencies.append(time.perf_counter() - start)
            while next_at < time.monotonic():  # a slow answer: skip the missed slots, no burst
                next_at += step


# the soak ------------------------------------------------------------------------------------

def _setup(client: httpx.Client) -> None:
    client.post("/pipelines", json={"namespace": "default", "layer": "bronze", "name": "soak",
                                    "source": SQL}).raise_for_status()
    first = wait_run(client, client.post("/runs", json=PIPELINE).json()["run_id"], timeout=300)
    if first["status"] != "success":
        raise RuntimeError(f"BM10 first run ended {first['status']}: {first.get('error')}")
    client.put("/admin/retention/config", json={
        "runs_max_per_pipeline": KEEP_RUNS, "reaper_interval_minutes": 1}).raise_for_status()


def _soak(server: Server, client: httpx.Client, tally: Tally) -> list[Sample]:
    started = time.monotonic()
    deadline = started + MINUTES * 60
    threads = [threading.Thread(target=_runs, args=(server, deadline, tally), daemon=True)]
    threads += [threading.Thread(target=_reads, args=(server, kind, deadline, tally), daemon=True)
                for kind in ("pipelines", "runs", "tables", "query")]
    for thread in threads:
        thread.start()
    samples: list[Sample] = []
    next_at = started
    while next_at <= deadline:
        time.sleep(max(0.0, next_at - time.monotonic()))
        next_at += SAMPLE_SECONDS
        sample = _sample(server, client, len(samples) * SAMPLE_SECONDS / 60)
        samples.append(sample)
        with tally.lock:
            reads = sum(tally.read_status.values())
            runs = dict(tally.run_status)
        print(f"   t={sample.at:5.1f} min rss {sample.rss / 2**20:7.1f} MiB pss "
              f"{sample.pss / 2**20:7.1f} MiB server {sample.server_rss / 2**20:6.1f} MiB "
              f"workers pss {sample.workers_pss / 2**20:6.1f} MiB "
              f"pg pss {sample.pg_pss / 2**20:6.1f} MiB "
              f"fds {sample.fds} pg {sample.pg_clients} pool {sample.pool_size:.0f} "
              f"runs {sample.runs_total} pruned {sample.runs_pruned} | reads {reads} "
              f"runs {runs} load {os.getloadavg()[0]:.1f}", flush=True)
    for thread in threads:
        thread.join(timeout=180)
    return samples


def _window(samples: list[Sample], lo: float, hi: float) -> list[Sample]:
    return [s for s in samples if lo <= s.at <= hi]


def _drift_rows(label: str, first: list[float], last: list[float]) -> list[Result]:
    base, end = statistics.mean(first), statistics.mean(last)
    return [Result("BM10", f"{label}, last 5 min", end / 2**20, "MiB",
                   floor=base / 2**20, target=1.10,
                   note=f"[drift {100 * (end / base - 1):+.1f} %; floor: first 5 min; "
                        "target < 10 %]")]


def _results(samples: list[Sample], tally: Tally) -> list[Result]:
    steady = _window(samples, WARMUP_MINUTES, MINUTES)
    first = _window(samples, WARMUP_MINUTES, WARMUP_MINUTES + WINDOW_MINUTES)
    last = _window(samples, MINUTES - WINDOW_MINUTES, MINUTES)
    if not first or not last:
        raise RuntimeError(f"BM10: too few samples ({len(samples)}) for {MINUTES} minutes")
    fds = [s.fds for s in steady]
    pg = [s.pg_clients for s in steady]
    pruned = samples[-1].runs_pruned - samples[0].runs_pruned
    most = max(s.runs_total for s in samples)
    created = sum(tally.run_status.values())
    observed = pruned > 0 and most < created
    prunes = [(p.runs_total, s.runs_total) for p, s in itertools.pairwise(samples)
              if s.runs_pruned > p.runs_pruned]
    around = f"; runs before/after first prune {prunes[0][0]}/{prunes[0][1]}" if prunes else ""
    reads = sum(tally.read_status.values())
    read_errors = reads - tally.read_status.get("200", 0)
    lat = tally.read_latencies
    return [
        *_drift_rows("RSS: server + workers + Postgres",
                     [s.rss for s in first], [s.rss for s in last]),
        *_drift_rows("PSS: server + workers + Postgres",
                     [s.pss for s in first], [s.pss for s in last]),
        *_drift_rows("RSS: server process only",
                     [s.server_rss for s in first], [s.server_rss for s in last]),
        *_drift_rows("PSS: workers", [s.workers_pss for s in first],
                     [s.workers_pss for s in last]),
        *_drift_rows("PSS: Postgres", [s.pg_pss for s in first], [s.pg_pss for s in last]),
        Result("BM10", "open fds of the server, max - min", max(fds) - min(fds), "",
               note=f"[min {min(fds)}, max {max(fds)}; first {fds[0]}, last {fds[-1]}]"),
        Result("BM10", "Postgres client connections, max - min", max(pg) - min(pg), "",
               note=f"[min {min(pg)}, max {max(pg)}; pool size "
                    f"{min(s.pool_size for s in steady):.0f}-"
                    f"{max(s.pool_size for s in steady):.0f}]"),
        Result("BM10", "run pruning observed (1 = yes)", float(observed), "",
               note=f"[runs_pruned +{pruned}; run count max {most} with {created} created, "
                    f"keep {KEEP_RUNS}; last {samples[-1].runs_total}{around}]"),
        Result("BM10", "runs succeeded", tally.run_status.get("success", 0), "",
               note=f"[{dict(tally.run_status)}]"),
        Result("BM10", "runs not succeeded (target 0)", created - tally.run_status["success"],
               "", target=0, note=f"[{'; '.join(tally.run_errors[:3])}]"),
        Result("BM10", "read request errors (target 0)", read_errors, "", target=0,
               note=f"[{reads} reads, {reads / (MINUTES * 60):.1f}/s of 20/s asked; "
                    f"{dict(tally.read_status)}]"),
        Result("BM10", "read p99 latency", percentile(lat, 99) * 1000 if lat else float("nan"),
               "ms", note=f"[p50 {percentile(lat, 50) * 1000:.1f} ms]" if lat else ""),
    ]


def run(ctx: BenchContext) -> list[Result]:
    if MINUTES < WARMUP_MINUTES + 2 * WINDOW_MINUTES:
        raise RuntimeError(f"RAT_SOAK_MINUTES must be >= {WARMUP_MINUTES + 2 * WINDOW_MINUTES}")
    print(f"   soak: {MINUTES:g} min, warm-up {WARMUP_MINUTES:g} min, load avg "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    tally = Tally()
    with ctx.server() as server, server.client() as client:
        _setup(client)
        samples = _soak(server, client, tally)
    return _results(samples, tally)
