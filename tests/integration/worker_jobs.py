"""A job for the worker-pipe tests, loaded into a real worker process as a module."""

from __future__ import annotations

from rat.engine.worker import Channel, register_job


def _ask(body: bytes, channel: Channel) -> bytes:
    """Ask the parent once and echo its answer."""
    return str(channel.rpc("echo", body.decode())).encode()


register_job("ask", _ask)
