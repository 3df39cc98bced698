"""BM8: upload a 1 GB CSV into a landing zone, then ingest it with a bronze pipeline.

Figures:
- upload MB/s against F_io, a plain copy of the same file on the same volume (target >= 0.5x,
  ambitious 0.8x; shown as time ratios, so target <= 2x and ambitious <= 1.25x), and against a
  bare Litestar endpoint that only reads the same multipart body (what HTTP alone costs here);
- server RSS growth while the upload streams (sampled every 20 ms): target <= 64 MB;
- ingest (POST /runs -> success of `SELECT * FROM read_csv(landing_zone())`) against DuckDB
  `COPY (FROM read_csv(…)) TO parquet` of the same file with the same threads and memory limit
  (target <= 1.3x, ambitious 1.1x).
The CSV is generated into a temp directory and removed afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.harness import BenchContext, Result, Server, free_port, wait_run

TARGET_BYTES = 1 << 30
ROWS_PER_GB = 13_400_000  # ~80.6 bytes per row with the columns below
MB = 1024 * 1024


def make_csv(directory: Path) -> Path:
    import duckdb

    path = directory / "orders.csv"
    con = duckdb.connect()
    con.execute(f"""COPY (
        SELECT i AS order_id, i % 100000 AS customer_id, 'customer_' || (i % 100000) AS customer,
               round((i * 7919 % 1000000) / 100.0, 2) AS amount,
               DATE '2020-01-01' + CAST(i % 1500 AS INTEGER) AS order_date,
               md5(CAST(i AS VARCHAR)) AS token
        FROM range({ROWS_PER_GB}) t(i)) TO '{path}' (HEADER, DELIMITER ',')""")
    con.close()
    if path.stat().st_size < TARGET_BYTES * 0.95:
        raise RuntimeError(f"generated CSV is only {path.stat().st_size} bytes")
    return path


class RssSampler:
    """Peak resident memory of the server process while a block runs."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.baseline = server.rss_bytes()
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss_bytes())
            time.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def copy_floor(source: Path, directory: Path) -> float:
    """Seconds for a plain copy of the file on the same volume (F_io)."""
    target = directory / "copy.csv"
    start = time.perf_counter()
    shutil.copyfile(source, target)
    elapsed = time.perf_counter() - start
    target.unlink()
    return elapsed


def duckdb_floor(source: Path, directory: Path) -> float:
    """Seconds for DuckDB to turn the CSV into zstd parquet (threads 2, memory 2GB)."""
    import duckdb

    out = directory / "floor.parquet"
    con = duckdb.connect(config={"threads": 2, "memory_limit": "2GB"})
    start = time.perf_counter()
    con.execute(f"COPY (FROM read_csv('{source}')) TO '{out}' (FORMAT parquet, COMPRESSION zstd)")
    elapsed = time.perf_counter() - start
    con.close()
    out.unlink()
    return elapsed


SINK_APP = """
from litestar import Litestar, Request, post

@post("/sink")
async def sink(request: Request) -> dict:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"size": size}

app = Litestar([sink], request_max_body_size=None)
"""


def http_floor(source: Path, directory: Path) -> float:
    """Seconds to send the same multipart upload to a bare Litestar endpoint that discards it:
    what HTTP alone costs on this machine with the same client, server and ASGI stack.
    """
    (directory / "sink_app.py").write_text(SINK_APP)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "sink_app:app", "--port", str(port),
                             "--log-level", "warning"], cwd=directory)
    try:
        url = f"http://127.0.0.1:{port}/sink"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.post(url, content=b"", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        with httpx.Client(timeout=600) as client, source.open("rb") as handle:
            start = time.perf_counter()
            client.post(url, files={"file": ("orders.csv", handle, "text/csv")}
                        ).raise_for_status()
            return time.perf_counter() - start
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def upload(server: Server, source: Path) -> tuple[float, RssSampler]:
    with server.client() as client, source.open("rb") as handle, RssSampler(server) as rss:
        start = time.perf_counter()
        resp = client.post("/landing-zones/default/orders/files",
                           files={"file": ("orders.csv", handle, "text/csv")})
        elapsed = time.perf_counter() - start
    resp.raise_for_status()
    return elapsed, rss


def ingest(server: Server) -> float:
    sql = "SELECT * FROM read_csv('{{ landing_zone(\"orders\") }}')"
    with server.client() as client:
        client.post("/pipelines", json={"namespace": "default", "layer": "bronze",
                                        "name": "orders", "source": sql}).raise_for_status()
        start = time.perf_counter()
        run_id = client.post("/runs", json={"namespace": "default", "layer": "bronze",
                                            "pipeline": "orders"}).json()["run_id"]
        run = wait_run(client, run_id)
        elapsed = time.perf_counter() - start
    if run["status"] != "success":
        raise RuntimeError(f"BM8 ingest failed: {run.get('error')}")
    return elapsed


def run(ctx: BenchContext) -> list[Result]:
    scratch = Path(tempfile.mkdtemp(prefix="rat-bm8-", dir="/tmp"))
    try:
        source = make_csv(scratch)
        size_mb = source.stat().st_size / MB
        env = {"RAT_UPLOAD_MAX_BYTES": str(4 << 30), "RAT_WORKERS": "1"}
        with ctx.server(env) as server:
            with server.client() as client:
                client.post("/landing-zones", json={"namespace": "default", "name": "orders"}
                            ).raise_for_status()
            copy_s = copy_floor(source, server.data_dir)
            http_s = http_floor(source, scratch)
            upload_s, rss = upload(server, source)
            ingest_s = ingest(server)
        floor_s = duckdb_floor(source, scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    growth_mb = (rss.peak - rss.baseline) / MB
    return [
        Result("BM8", f"upload {size_mb:.0f} MB CSV (s; floor: file copy)", upload_s, "s",
               floor=copy_s, target=2.0, ambitious=1.25,
               note=f"[{size_mb / upload_s:.0f} MB/s vs {size_mb / copy_s:.0f} MB/s]"),
        Result("BM8", "upload (s; floor: bare HTTP body read)", upload_s, "s", floor=http_s,
               note=f"[bare Litestar sink {size_mb / http_s:.0f} MB/s: HTTP alone]"),
        Result("BM8", "server RSS growth during upload (<= 64 MB)", growth_mb, "MB",
               target=64.0),
        Result("BM8", "ingest CSV -> Iceberg (floor: DuckDB COPY)", ingest_s, "s",
               floor=floor_s, target=1.3, ambitious=1.1),
    ]
