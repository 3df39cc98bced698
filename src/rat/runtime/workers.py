"""Pre-started engine worker processes and the pool that leases them to jobs.

Each worker is `python -m rat.engine.workerproc` spawned (never forked from the event loop) with a
scrubbed environment: no database URL, no platform secrets. A reader thread per worker turns
frames into asyncio queue items, so the event loop never blocks on the pipe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from rat.core.specs import Confinement
from rat.runtime.sandbox import Sandbox

log = logging.getLogger(__name__)
_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()
_SAFE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PYTHONPATH", "VIRTUAL_ENV",
             "RAT_RUNNER_PLUGINS")
START_TIMEOUT_SECONDS = 60.0

EventHandler = Callable[[dict[str, Any]], Awaitable[None] | None]
RpcHandler = Callable[[str, Any], Awaitable[Any]]


class WorkerDied(Exception):
    """The worker process exited while running a job."""

    def __init__(self, returncode: int | None, detail: str = "") -> None:
        self.returncode = returncode
        if detail:
            super().__init__(detail)
            return
        if returncode is not None and returncode < 0:
            detail = f"signal {signal.Signals(-returncode).name}"
        else:
            detail = f"exit code {returncode}"
        super().__init__(f"worker process died: {detail}")


class JobFailed(Exception):
    """The job raised inside the worker (a bug or an engine error, not a user error)."""


def worker_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in _SAFE_ENV}


class WorkerProcess:
    def __init__(self, kind: str, modules: tuple[str, ...] = (), *,
                 sandbox: Sandbox | None = None, slot: int = 0, silence_seconds: float = 0,
                 jail: Confinement | None = None, resident: bool = False) -> None:
        self.kind = kind
        self.resident = resident
        self.modules = modules
        self.sandbox = sandbox
        self.slot = slot
        self.silence_seconds = silence_seconds
        self.jail = jail or Confinement(landlock=False)
        self.proc: subprocess.Popen[bytes] | None = None
        self.conn: Connection | None = None
        self._inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._send_lock = asyncio.Lock()
        self.busy = False

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    async def start(self) -> None:
        parent_sock, child_sock = socket.socketpair()
        child_fd = child_sock.detach()
        os.set_inheritable(child_fd, True)
        # -P: the server's working directory (which may hold the data dir) is not importable.
        args = [sys.executable, "-P", "-m", "rat.engine.workerproc", str(child_fd), self.kind,
                *self.modules]
        env = worker_env()
        if self.sandbox is not None:
            args = self.sandbox.argv(args)
            identity = self.sandbox.identity(self.kind, self.slot)
            if identity is not None:
                env["RAT_WORKER_IDENTITY"] = f"{identity[0]}:{identity[1]}"
        if self.resident:
            env["RAT_WORKER_RESIDENT_JAIL"] = msgspec.json.encode(self.jail).decode()
        self.proc = await asyncio.to_thread(
            subprocess.Popen, args, pass_fds=(child_fd,), env=env,
            stdin=subprocess.DEVNULL, start_new_session=True)
        os.close(child_fd)
        self.conn = Connection(parent_sock.detach())
        loop = asyncio.get_running_loop()
        threading.Thread(target=self._read, args=(loop,), daemon=True,
                         name=f"rat-{self.kind}-reader").start()
        msg = await asyncio.wait_for(self._inbox.get(), START_TIMEOUT_SECONDS)
        if msg.get("t") != "ready":
            raise WorkerDied(self.proc.poll())

    def _read(self, loop: asyncio.AbstractEventLoop) -> None:
        assert self.conn is not None  # noqa: S101
        while True:
            try:
                msg = _dec.decode(self.conn.recv_bytes())
            except (EOFError, OSError):
                msg = {"t": "eof"}
            try:
                loop.call_soon_threadsafe(self._inbox.put_nowait, msg)
            except RuntimeError:
                return
            if msg.get("t") == "eof":
                return

    async def _send(self, msg: dict[str, Any]) -> None:
        assert self.conn is not None  # noqa: S101
        data = _enc.encode(msg)
        async with self._send_lock:
            await asyncio.to_thread(self.conn.send_bytes, data)

    async def _deliver(self, msg: dict[str, Any]) -> None:
        """Send during a job; a broken pipe there means the worker died.

        Raising WorkerDied (not BrokenPipeError) lets the run fail or retry as a dead worker.
        """
        try:
            await self._send(msg)
        except (OSError, EOFError):
            raise WorkerDied(await self._returncode()) from None

    async def call(self, job: str, body: bytes, *, on_event: EventHandler | None = None,
                   rpc: RpcHandler | None = None, jail: Confinement | None = None) -> bytes:
        """Run `job` in the worker; events and RPCs are served until it answers.

        The job runs confined by `jail` (the pool's default when None). A worker silent for
        longer than `silence_seconds` (frozen, stopped, or spinning with the GIL held) is
        killed and reported dead.
        """
        await self._deliver({"t": "job", "job": job, "body": body,
                             "jail": msgspec.to_builtins(jail or self.jail)})
        while True:
            msg = await self._next_frame()
            kind = msg.get("t")
            if kind == "done":
                return bytes(msg["body"])
            if kind == "failed":
                raise JobFailed(str(msg.get("error")))
            if kind == "eof":
                raise WorkerDied(await self._returncode())
            if kind == "beat":
                continue
            if kind == "rpc":
                await self._answer(msg, rpc)
            elif on_event is not None:
                result = on_event(msg)
                if result is not None:
                    await result

    async def _next_frame(self) -> dict[str, Any]:
        if not self.silence_seconds:
            return await self._inbox.get()
        try:
            return await asyncio.wait_for(self._inbox.get(), self.silence_seconds)
        except TimeoutError:
            log.warning("%s worker pid %s silent for %.0f s: killing it", self.kind, self.pid,
                        self.silence_seconds)
            self.kill()
            raise WorkerDied(None, f"worker stopped answering for {self.silence_seconds:.0f} s "
                                   "(frozen or stopped); killed") from None

    async def _answer(self, msg: dict[str, Any], rpc: RpcHandler | None) -> None:
        try:
            if rpc is None:
                raise RuntimeError("this job cannot make requests")
            body = await rpc(str(msg["method"]), msg.get("body"))
            reply = {"t": "rpc_ok", "id": msg["id"], "body": body}
        except Exception as exc:
            reply = {"t": "rpc_err", "id": msg["id"], "error": str(exc) or type(exc).__name__}
        await self._deliver(reply)

    async def _returncode(self) -> int | None:
        if self.proc is None:
            return None
        try:
            return await asyncio.wait_for(asyncio.to_thread(self.proc.wait), 5)
        except TimeoutError:
            return self.proc.poll()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the worker's whole process group (bubblewrap, the zygote and its job child)."""
        if self.alive and self.proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    async def stop(self, grace: float = 5.0) -> None:
        if not self.alive or self.proc is None:
            return
        with contextlib.suppress(Exception):
            await self._send({"t": "stop"})
        try:
            await asyncio.wait_for(asyncio.to_thread(self.proc.wait), grace)
        except TimeoutError:
            self.kill()
            await asyncio.to_thread(self.proc.wait)


class WorkerPool:
    """A fixed number of warm workers; a dead or retired worker is replaced in the background."""

    def __init__(self, kind: str, size: int, modules: tuple[str, ...] = (), *,
                 sandbox: Sandbox | None = None, silence_seconds: float = 0,
                 jail: Confinement | None = None, resident: bool = False) -> None:
        self.kind = kind
        self.size = size
        self.resident = resident
        self.modules = modules
        self.sandbox = sandbox
        self.silence_seconds = silence_seconds
        self.jail = jail
        self._slots: set[int] = set(range(size))
        self._idle: asyncio.Queue[WorkerProcess] = asyncio.Queue()
        self._all: set[WorkerProcess] = set()
        self._spawning: set[asyncio.Task[None]] = set()
        self._closed = False

    @property
    def busy(self) -> int:
        return sum(1 for w in self._all if w.busy)

    @property
    def alive(self) -> int:
        return sum(1 for w in self._all if w.alive)

    @property
    def idle(self) -> int:
        return self._idle.qsize()

    async def start(self) -> None:
        await asyncio.gather(*(self._spawn() for _ in range(self.size)))

    async def _spawn(self) -> None:
        slot = min(self._slots) if self._slots else len(self._all)
        self._slots.discard(slot)
        worker = WorkerProcess(self.kind, self.modules, sandbox=self.sandbox, slot=slot,
                               silence_seconds=self.silence_seconds, jail=self.jail,
                               resident=self.resident)
        try:
            await worker.start()
        except BaseException as exc:  # cancelled by a stop too: never leave it running
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("cannot start %s worker", self.kind)
            worker.kill()
            self._slots.add(slot)
            raise
        if self._closed:
            await worker.stop()
            return
        self._all.add(worker)
        self._idle.put_nowait(worker)

    def _replace(self, worker: WorkerProcess) -> None:
        self._all.discard(worker)
        worker.kill()
        self._slots.add(worker.slot)
        if self._closed:
            return
        task = asyncio.create_task(self._spawn_retrying())
        self._spawning.add(task)
        task.add_done_callback(self._spawning.discard)

    async def _spawn_retrying(self) -> None:
        while not self._closed:
            try:
                await self._spawn()
                return
            except Exception:
                await asyncio.sleep(2)

    @contextlib.asynccontextmanager
    async def lease(self, *, retire: bool = False) -> AsyncIterator[WorkerProcess]:
        """Borrow an idle worker; it is replaced instead of returned if it died or `retire`."""
        worker = await self._idle.get()
        while not worker.alive:
            self._replace(worker)
            worker = await self._idle.get()
        worker.busy = True
        healthy = False
        try:
            yield worker
            healthy = True
        finally:
            worker.busy = False
            if healthy and worker.alive and not retire and not self._closed:
                self._idle.put_nowait(worker)
            else:
                self._replace(worker)

    async def acquire_within(self, seconds: float) -> bool:
        """True if a worker is idle now or becomes idle within `seconds` (capacity probe)."""
        if self._idle.qsize():
            return True
        deadline = asyncio.get_running_loop().time() + seconds
        while asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            if self._idle.qsize():
                return True
        return False

    async def stop(self, grace: float = 5.0) -> None:
        self._closed = True
        for task in list(self._spawning):
            task.cancel()
        await asyncio.gather(*(w.stop(grace) for w in list(self._all)), return_exceptions=True)
        self._all.clear()
