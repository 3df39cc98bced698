"""A small HTTP/1.1 load generator: N keep-alive connections, each a closed loop of GETs.

Written on raw asyncio streams (with uvloop) rather than an HTTP client library because on a
2-core machine the generator shares the CPU with the server: httpx spends ~10x more CPU per
request and would measure itself. Requests go to loopback only; every run is bounded in time.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.harness import percentile

CONNECT_TIMEOUT_SECONDS = 10.0


@dataclass
class LoadStats:
    concurrency: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def pct_ms(self, pct: float) -> float:
        return percentile(self.latencies, pct) * 1000 if self.latencies else float("nan")

    @property
    def server_errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 500)

    def summary(self) -> str:
        return (f"c={self.concurrency} {self.rps:.0f} req/s p50 {self.pct_ms(50):.1f} ms "
                f"p99 {self.pct_ms(99):.1f} ms statuses {dict(self.statuses)} "
                f"errors {dict(self.errors)}")


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in
               (line.partition(":") for line in lines[1:] if line)}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    else:
        await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers.get("connection", "").lower() == "close"


async def _connection(host: str, port: int, request: bytes, record_from: float, stop_at: float,
                      stats: LoadStats) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.perf_counter() < stop_at:
        try:
            if writer is None:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port),
                                                        CONNECT_TIMEOUT_SECONDS)
            assert reader is not None
            started = time.perf_counter()
            writer.write(request)
            status, close = await _read_response(reader)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            stats.errors[type(exc).__name__] += 1
            writer = _close(writer)
            await asyncio.sleep(0.01)
            continue
        if started >= record_from:
            stats.latencies.append(time.perf_counter() - started)
            stats.statuses[status] += 1
        if close:
            writer = _close(writer)
    _close(writer)


def _close(writer: asyncio.StreamWriter | None) -> None:
    if writer is not None:
        writer.close()


async def _load(host: str, port: int, paths: Callable[[int], str], concurrency: int,
                seconds: float, warmup: float) -> LoadStats:
    stats = LoadStats(concurrency)
    start = time.perf_counter()
    record_from, stop_at = start + warmup, start + warmup + seconds
    tasks = [asyncio.create_task(_connection(
        host, port, f"GET {paths(i)} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    "Accept: application/json\r\n\r\n".encode(), record_from, stop_at, stats))
        for i in range(concurrency)]
    await asyncio.gather(*tasks)
    stats.seconds = seconds
    return stats


def run_load(host: str, port: int, paths: Callable[[int], str], *, concurrency: int,
             seconds: float, warmup: float = 2.0) -> LoadStats:
    """Hold `concurrency` connections busy for `warmup + seconds`; measure the last `seconds`."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(_load(host, port, paths, concurrency, seconds, warmup))
