"""Shared benchmark machinery: results with floors measured in the same run, a live RAT, TPC-H data.

A benchmark module `bench/bmN_*.py` defines `run(ctx: BenchContext) -> list[Result]`. Each result
pairs RAT's figure with a floor measured on the same machine in the same run, so the printed
ratio means something on a noisy host.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "bench" / ".data"


@dataclass
class Result:
    bench: str
    figure: str
    value: float
    unit: str
    floor: float | None = None
    target: float | None = None
    ambitious: float | None = None
    note: str = ""
    error: str = ""

    @classmethod
    def failed(cls, bench: str, exc: BaseException) -> Result:
        """The row of a benchmark that did not finish: its error instead of a figure."""
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        return cls(bench, "(benchmark failed)", float("nan"), "", error=text[:300])

    @property
    def ratio(self) -> float | None:
        if self.floor is None or self.floor == 0:
            return None
        return self.value / self.floor

    def verdict(self) -> str:
        if self.error:
            return "FAILED"
        measure = self.ratio if self.floor is not None else self.value
        if measure is None or self.target is None:
            return ""
        if self.ambitious is not None and measure <= self.ambitious:
            return "ambitious met"
        return "target met" if measure <= self.target else "MISSED"


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`rat serve` on the embedded default in a scratch data directory."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="rat-bench-", dir="/tmp"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAT_")}
        self.env.update({"RAT_DATA_DIR": str(self.data_dir), "RAT_PORT": str(self.port),
                         "RAT_LOG_LEVEL": "warning", "RAT_RATE_LIMIT_RPS": "0", **(env or {})})
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.data_dir / "server.log").open("wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "rat", "serve"], env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.2)
        raise RuntimeError("RAT did not become ready")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", timeout=600)

    def rss_bytes(self) -> int:
        """Resident memory of the server process itself (not its workers)."""
        assert self.proc is not None
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0


@dataclass
class BenchContext:
    results: list[Result] = field(default_factory=list)

    @contextmanager
    def server(self, env: dict[str, str] | None = None) -> Iterator[Server]:
        server = Server(env)
        try:  # a server that never became ready is stopped too, so later benchmarks can run
            server.start()
            yield server
        finally:
            server.stop()

    def tpch_parquet(self, sf: int = 1) -> Path:
        """TPC-H tables at scale factor `sf` as parquet files (generated once, then cached)."""
        target = DATA / f"tpch-sf{sf}"
        done = target / ".complete"
        if done.exists():
            return target
        import duckdb

        from rat.engine.duck import extension_path, sql_str

        target.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                     "autoload_known_extensions": False})
        con.execute(f"LOAD {sql_str(extension_path('tpch'))}")
        con.execute(f"CALL dbgen(sf={sf})")
        for (table,) in con.execute("SHOW TABLES").fetchall():
            con.execute(f"COPY {table} TO {sql_str(str(target / f'{table}.parquet'))} "
                        "(FORMAT parquet, COMPRESSION zstd)")
        done.touch()
        return target


def wait_run(client: httpx.Client, run_id: str, timeout: float = 3600) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] in ("success", "failed", "cancelled"):
            return dict(run)
        time.sleep(0.02)
    raise TimeoutError(run_id)


def report(results: list[Result]) -> str:
    lines = [f"{'bench':<6} {'figure':<44} {'value':>12} {'floor':>12} {'ratio':>7}  verdict",
             "-" * 100]
    for r in results:
        if r.error:
            lines.append(f"{r.bench:<6} {r.figure:<44} {'-':>12}{'-':>11} {'-':>7}  FAILED "
                         f"{r.error}")
            continue
        floor = f"{r.floor:.3f}" if r.floor is not None else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio is not None else "-"
        lines.append(f"{r.bench:<6} {r.figure:<44} {r.value:>10.3f} {r.unit:<2}"
                     f"{floor:>11} {ratio:>7}  {r.verdict()} {r.note}")
    return "\n".join(lines)
