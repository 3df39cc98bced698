"""The engine worker process: job loop, pipe protocol and RPC client (entry: rat.engine.workerproc).

The parent passes one end of a socketpair as FD. Frames are msgpack maps:
parent -> worker: {t: job, job, body} | {t: rpc_ok, id, body} | {t: rpc_err, id, error} | {t: stop}
worker -> parent: {t: ready} | {t: log, level, message} | {t: phase, name} | {t: rpc, id, method,
body} | {t: chunk, body} | {t: beat} | {t: done, body} | {t: failed, error}
A job carries `jail` (a Confinement); it runs in a forked, confined child (see run_forked).
The worker holds no database credentials; it asks the parent for everything stateful.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from rat.core.specs import (
    CommitRequest,
    Confinement,
    RunSpec,
    StageRequest,
    StageState,
    TableState,
)
from rat.engine import confine

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()
BEAT_SECONDS = 2.0
SCRATCH_POLL_SECONDS = 0.5


class RemoteError(Exception):
    """The parent answered an RPC with an error."""


class Channel:
    """The worker's side of the pipe: events out, blocking RPCs."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._next = 0
        self._lock = threading.Lock()

    def send(self, msg: dict[str, Any]) -> None:
        with self._lock:
            self.conn.send_bytes(_enc.encode(msg))

    def recv(self) -> dict[str, Any]:
        msg: dict[str, Any] = _dec.decode(self.conn.recv_bytes())
        return msg

    def rpc(self, method: str, body: Any) -> Any:
        self._next += 1
        self.send({"t": "rpc", "id": self._next, "method": method, "body": body})
        reply = self.recv()
        if reply.get("t") == "rpc_err":
            raise RemoteError(str(reply.get("error")))
        return reply.get("body")


class PipeHost:
    """RunHost over the pipe: the parent runs catalog and state operations for the worker."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def table_state(self, ident: str) -> TableState | None:
        body = self.channel.rpc("table_state", ident)
        return None if body is None else msgspec.convert(body, TableState)

    def landing_files(self, namespace: str, zone: str) -> list[str]:
        return list(self.channel.rpc("landing_files", [namespace, zone]))

    def prepare_stage(self, req: StageRequest) -> StageState:
        return msgspec.convert(self.channel.rpc("prepare_stage", msgspec.to_builtins(req)),
                               StageState)

    def commit_stage(self, req: CommitRequest) -> StageState:
        return msgspec.convert(self.channel.rpc("commit_stage", msgspec.to_builtins(req)),
                               StageState)

    def log(self, level: str, message: str) -> None:
        self.channel.send({"t": "log", "level": level, "message": message})

    def phase(self, name: str) -> None:
        self.channel.send({"t": "phase", "name": name})


def _run_job(body: bytes, channel: Channel) -> bytes:
    from rat.engine.run import execute_run

    spec = msgspec.msgpack.decode(body, type=RunSpec)
    return msgspec.msgpack.encode(execute_run(spec, PipeHost(channel)))


JOBS: dict[str, Callable[[bytes, Channel], bytes]] = {"run": _run_job}


def register_job(name: str, handler: Callable[[bytes, Channel], bytes]) -> None:
    JOBS[name] = handler


def _warm_up() -> None:
    """Pay import and extension-load costs before the first job (~0.75 s per process)."""
    import duckdb  # noqa: F401
    import pyarrow  # noqa: F401
    import pyiceberg.table  # noqa: F401

    from rat.engine import duck, render, sqlcheck  # noqa: F401

    con = duck.connect(memory_limit="256MB", threads=1)
    con.close()
    sqlcheck.statement_types("SELECT 1")


def _watch_parent(parent: int) -> None:
    """Exit when the parent dies (kill -9 of the server must not leave workers behind)."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def serve(channel: Channel, *, resident: bool = False) -> None:
    """Serve jobs: each in a forked, confined child; or, `resident`, in this (confined) process."""
    while True:
        try:
            msg = channel.recv()
        except (EOFError, OSError):
            return
        if msg.get("t") == "stop":
            return
        if msg.get("t") != "job":
            continue
        if resident:
            _answer(channel, msg, Confinement(landlock=False))
        else:
            run_forked(channel, msg)


def run_forked(channel: Channel, msg: dict[str, Any]) -> None:
    """Run one job in a forked child confined to the job's paths and limits.

    The warm zygote never runs user code itself, so nothing a job does (imports, globals,
    Landlock rules, limits) outlives the job. While the child runs it owns the channel; the
    zygote only waits and reports a death the child could not report itself.
    """
    jail = msgspec.convert(msg.get("jail") or {}, Confinement)
    pid = os.fork()
    if pid == 0:  # the child: confine, run, answer, exit without running zygote cleanup
        os._exit(_child(channel, msg, jail))
    watchdog = ScratchWatchdog(pid, jail)
    watchdog.start()
    _, status = os.waitpid(pid, 0)
    watchdog.stop()
    if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
        return
    channel.send({"t": "failed", "error": watchdog.reason or _death(status, jail)})


def _death(status: int, jail: Confinement) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return confine.limit_message(sig, jail) or \
            f"worker process died: killed by signal {signal.Signals(sig).name}" + (
                " (out of memory?)" if sig in (signal.SIGKILL, signal.SIGABRT, signal.SIGSEGV)
                else "")
    return f"the run's process exited with code {os.WEXITSTATUS(status)}"


def _child(channel: Channel, msg: dict[str, Any], jail: Confinement) -> int:
    confine.die_with_parent()  # a zygote that dies takes its job with it (the job owns the pipe)
    try:
        confine.confine(jail)
    except confine.ConfineError as exc:
        channel.send({"t": "failed", "error": f"sandbox: {exc}"})
        return 0
    Beat(channel).start()
    return _answer(channel, msg, jail)


def _answer(channel: Channel, msg: dict[str, Any], jail: Confinement) -> int:
    """Run the job's handler and send its answer; 1 when even the answer could not be sent."""
    try:
        handler = JOBS[str(msg["job"])]
        channel.send({"t": "done", "body": handler(msg["body"], channel)})
    except BaseException as exc:
        hint = confine.errno_hint(exc, jail)
        try:
            channel.send({"t": "failed", "error": f"{type(exc).__name__}: {exc}"
                          + (f" ({hint})" if hint else ""),
                          "trace": traceback.format_exc(limit=8)})
        except OSError:
            return 1
    return 0


class Beat(threading.Thread):
    """Liveness: a frame every BEAT_SECONDS while the job runs (a frozen process sends none)."""

    def __init__(self, channel: Channel) -> None:
        super().__init__(daemon=True, name="rat-beat")
        self.channel = channel

    def run(self) -> None:
        while True:
            time.sleep(BEAT_SECONDS)
            try:
                self.channel.send({"t": "beat"})
            except OSError:
                return


class ScratchWatchdog(threading.Thread):
    """Kill the job's child when its scratch directory outgrows the job's disk allowance."""

    def __init__(self, pid: int, jail: Confinement) -> None:
        super().__init__(daemon=True, name="rat-scratch-watch")
        self.pid = pid
        self.jail = jail
        self.reason: str | None = None
        self._done = threading.Event()

    def start(self) -> None:
        if self.jail.scratch_bytes and self.jail.scratch_dir:
            super().start()

    def stop(self) -> None:
        self._done.set()

    def run(self) -> None:
        while not self._done.wait(SCRATCH_POLL_SECONDS):
            if _tree_bytes(self.jail.scratch_dir) > self.jail.scratch_bytes:
                self.reason = (f"the run exceeded its scratch disk limit "
                               f"({self.jail.scratch_bytes} bytes)")
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
                return


def _tree_bytes(root: str) -> int:
    total = 0
    for base, _dirs, files in os.walk(root):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(base, name)).st_blocks * 512
    return total


def main(argv: list[str]) -> int:
    fd, kind = int(argv[1]), argv[2]
    identity = os.environ.pop("RAT_WORKER_IDENTITY", "")
    if identity:  # started as root inside bubblewrap: become the worker's own user first
        uid, gid = (int(x) for x in identity.split(":"))
        confine.drop_identity(uid, gid)
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    channel = Channel(Connection(fd))
    for module in [m for m in argv[3:] if m]:
        __import__(module)
    _warm_up()
    resident = os.environ.pop("RAT_WORKER_RESIDENT_JAIL", "")
    if resident:  # a worker that keeps state between jobs (the console): confined once, whole
        confine.confine(msgspec.json.decode(resident, type=Confinement))
        Beat(channel).start()
    try:
        channel.send({"t": "ready", "kind": kind, "pid": os.getpid()})
    except OSError:
        return 0  # the server stopped while this worker started: nothing to report to
    serve(channel, resident=bool(resident))
    return 0
