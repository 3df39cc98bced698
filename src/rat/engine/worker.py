"""The engine worker process: job loop, pipe protocol and RPC client (entry: rat.engine.workerproc).

The parent passes one end of a socketpair as FD. Frames are msgpack maps:
parent -> worker: {t: job, job, body} | {t: rpc_ok, id, body} | {t: rpc_err, id, error} | {t: stop}
worker -> parent: {t: ready} | {t: log, level, message} | {t: phase, name} | {t: rpc, id, method,
body} | {t: chunk, body} | {t: done, body} | {t: failed, error}
The worker holds no database credentials; it asks the parent for everything stateful.
"""

from __future__ import annotations

import os
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import msgspec

from rat.core.specs import CommitRequest, RunSpec, StageRequest, StageState, TableState

_enc = msgspec.msgpack.Encoder()
_dec = msgspec.msgpack.Decoder()


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


def serve(channel: Channel) -> None:
    while True:
        try:
            msg = channel.recv()
        except (EOFError, OSError):
            return
        if msg.get("t") == "stop":
            return
        if msg.get("t") != "job":
            continue
        try:
            handler = JOBS[str(msg["job"])]
            channel.send({"t": "done", "body": handler(msg["body"], channel)})
        except Exception as exc:
            channel.send({"t": "failed", "error": f"{type(exc).__name__}: {exc}",
                          "trace": traceback.format_exc(limit=8)})


def main(argv: list[str]) -> int:
    fd, kind = int(argv[1]), argv[2]
    parent = os.getppid()
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    channel = Channel(Connection(fd))
    for module in [m for m in argv[3:] if m]:
        __import__(module)
    _warm_up()
    channel.send({"t": "ready", "kind": kind, "pid": os.getpid()})
    serve(channel)
    return 0

