"""Helpers for the write-path benchmarks (BM2-BM4): TPC-H data inside a live RAT, worker memory.

Not a benchmark itself (the runner only picks up `bm*` modules).
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path
from typing import Any

import httpx

from bench.harness import BenchContext, Server


def land(ctx: BenchContext, server: Server, zone: str, tables: tuple[str, ...]) -> None:
    """Put TPC-H SF1 parquet files into a landing zone of the server's local storage.

    Stands in for an upload (BM8 measures uploads), so these benchmarks time only the engine.
    """
    source = ctx.tpch_parquet(1)
    target = server.data_dir / "storage" / "default" / "landing" / zone
    target.mkdir(parents=True, exist_ok=True)
    for table in tables:
        shutil.copyfile(source / f"{table}.parquet", target / f"{table}.parquet")


def pipeline(client: httpx.Client, layer: str, name: str, sql: str,
             config: str | None = None) -> None:
    client.post("/pipelines", json={"namespace": "default", "layer": layer, "name": name,
                                    "source": sql}).raise_for_status()
    if config is not None:
        path = f"default/pipelines/{layer}/{name}/config.yaml"
        client.put(f"/files/{path}", json={"content": config}).raise_for_status()


def set_sql(client: httpx.Client, layer: str, name: str, sql: str) -> None:
    path = f"default/pipelines/{layer}/{name}/pipeline.sql"
    client.put(f"/files/{path}", json={"content": sql}).raise_for_status()


def wait(client: httpx.Client, run_id: str, start: float) -> dict[str, Any]:
    """Poll a run until it ends, backing off so polling never competes with the run for CPU
    (on 2 cores, 50 polls a second slowed a 6M-row write ~3x); resolution stays within 2%."""
    while True:
        run = dict(client.get(f"/runs/{run_id}").json())
        if run["status"] in ("success", "failed", "cancelled"):
            return run
        time.sleep(min(0.25, 0.01 + (time.perf_counter() - start) / 50))


def run(client: httpx.Client, layer: str, name: str) -> tuple[float, dict[str, Any]]:
    """Trigger a run and wait for it; returns (POST-to-success seconds, run detail)."""
    start = time.perf_counter()
    run_id = client.post("/runs", json={"namespace": "default", "layer": layer,
                                        "pipeline": name}).json()["run_id"]
    status = wait(client, run_id, start)
    elapsed = time.perf_counter() - start
    detail = dict(client.get(f"/runs/{run_id}").json())
    if status["status"] != "success":
        raise RuntimeError(f"{layer}.{name} ended {status['status']}: {status.get('error')}")
    return elapsed, detail


def phase_seconds(detail: dict[str, Any], name: str) -> float:
    return sum(p["duration_ms"] for p in detail["phase_profiles"] if p["name"] == name) / 1000


class WorkerMemory:
    """Peak resident memory of the server's worker processes over a span (Linux /proc).

    `reset()` clears each worker's high-water mark (clear_refs 5); `peak()` reads VmHWM.
    """

    def __init__(self, server: Server) -> None:
        assert server.proc is not None
        self.parent = server.proc.pid

    def workers(self) -> list[int]:
        out = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.parent:
                out.append(int(entry))
        return out

    def reset(self) -> None:
        for pid in self.workers():
            with open(f"/proc/{pid}/clear_refs", "w") as f:
                f.write("5")

    def peak(self) -> int:
        best = 0
        for pid in self.workers():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    best = max(best, int(line.split()[1]) * 1024)
        return best


def iceberg_files(server: Server, layer: str, name: str) -> list[str]:
    """Parquet data files currently under a table's data directory (local storage)."""
    root = server.data_dir / "storage" / "_warehouse" / "default" / layer / name / "data"
    return sorted(str(p) for p in root.rglob("*.parquet"))


def floor_duckdb(sql: str, threads: int = 2) -> float:
    """Seconds for a fresh DuckDB (same threads as a worker) to run `sql`."""
    import duckdb

    start = time.perf_counter()
    con = duckdb.connect(config={"threads": threads})
    con.execute(sql)
    con.close()
    return time.perf_counter() - start


def scratch(prefix: str) -> Path:
    import tempfile

    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
