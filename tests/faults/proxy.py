"""A fault-injecting TCP proxy on loopback, for putting bad weather between RAT and moto S3.

Runs an asyncio loop in one daemon thread; every knob is a plain attribute read per chunk:
- `latency`: seconds added before each forwarded chunk (both directions);
- `reset_requests`: the next N client chunks that start an HTTP request are answered with a
  TCP reset instead of being forwarded (a "reset storm");
- `outage(seconds)`: for that long every connection, open or new, is reset on its next chunk
  or at once; `outage_on(patterns, seconds)` starts one when a client chunk contains every
  pattern (e.g. (b"PUT ", b"partNumber=") mid-upload).
Bounded: at most `max_connections` connections; `stop()` closes everything.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading
import time

METHODS = (b"GET ", b"PUT ", b"POST ", b"HEAD ", b"DELETE ")


class FaultProxy:
    def __init__(self, upstream_port: int, max_connections: int = 128) -> None:
        self.upstream_port = upstream_port
        self.max_connections = max_connections
        self.latency = 0.0
        self.reset_requests = 0
        self.resets = 0
        self.requests = 0
        self.outage_until = 0.0
        self.triggers: list[tuple[tuple[bytes, ...], float]] = []
        self.triggered: list[tuple[bytes, ...]] = []
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._conns: set[asyncio.Task[None]] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fault-proxy")
        self.port = 0

    # Control (any thread) -------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fault proxy did not start")

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._shutdown)
        self._thread.join(10)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def outage(self, seconds: float) -> None:
        self.outage_until = time.monotonic() + seconds

    def outage_on(self, patterns: tuple[bytes, ...], seconds: float) -> None:
        with self._lock:
            self.triggers.append((patterns, seconds))

    def in_outage(self) -> bool:
        return time.monotonic() < self.outage_until

    def calm(self) -> None:
        with self._lock:
            self.latency, self.reset_requests, self.outage_until = 0.0, 0, 0.0
            self.triggers.clear()

    # Loop -----------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.close()

    def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._conns:
            task.cancel()
        self._loop.call_later(0.2, self._loop.stop)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if len(self._conns) >= self.max_connections or self.in_outage():
            _reset(writer)
            return
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            _reset(writer)
            self._conns.discard(task)
            return
        try:
            await asyncio.gather(self._pump(reader, up_writer, writer, client=True),
                                 self._pump(up_reader, writer, writer, client=False))
        except (OSError, asyncio.CancelledError, _Reset):
            pass
        finally:
            _reset(writer)
            up_writer.close()
            self._conns.discard(task)

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter,
                    client_writer: asyncio.StreamWriter, *, client: bool) -> None:
        while chunk := await src.read(65536):
            if client:
                self._inspect(chunk)
            if self.in_outage() or (client and self._take_reset(chunk)):
                self.resets += 1
                _reset(client_writer)
                raise _Reset
            if self.latency:
                await asyncio.sleep(self.latency)
            dst.write(chunk)
            await dst.drain()
        with contextlib.suppress(OSError):
            dst.write_eof()

    def _inspect(self, chunk: bytes) -> None:
        with self._lock:
            if chunk.startswith(METHODS):
                self.requests += 1
            for patterns, seconds in list(self.triggers):
                if all(p in chunk for p in patterns):
                    self.triggers.remove((patterns, seconds))
                    self.triggered.append(patterns)
                    self.outage(seconds)

    def _take_reset(self, chunk: bytes) -> bool:
        with self._lock:
            if self.reset_requests > 0 and chunk.startswith(METHODS):
                self.reset_requests -= 1
                return True
            return False


class _Reset(Exception):
    pass


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), as a dropped connection looks to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
