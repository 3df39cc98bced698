"""Bad weather between RAT and its object store: latency, reset storms, 20 s outages.

A real `rat serve` on S3 (moto) with every S3 call — the server's minio client, pyiceberg's
pyarrow FileIO in the parent, DuckDB httpfs in the workers — going through `FaultProxy`. A run
either succeeds or fails leaving the table at its previous snapshot, and every file the
table's metadata references exists (checked straight against moto, not through the proxy).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from rat.app import sqlalchemy_url
from rat.core.specs import StorageSpec
from rat.engine.catalog import CatalogSpec, IcebergTables
from tests.conftest import RatServer, S3Server, clone_database, unique
from tests.faults.proxy import FaultProxy
from tests.faults.support import count, create_pipeline, missing_files, run

pytestmark = pytest.mark.timeout(300)
OUTAGE_SECONDS = 20.0
STORM_SECONDS = 2.0
# ~200k rows: data files of a few MB, so the upload has parts to interrupt.
SOURCE = "SELECT range AS id, md5(range::VARCHAR) AS a FROM range({n})"


class World:
    def __init__(self, server: RatServer, proxy: FaultProxy, tables: IcebergTables) -> None:
        self.server = server
        self.proxy = proxy
        self.tables = tables

    def snapshot(self, name: str) -> int | None:
        state = self.tables.state(f"default.bronze.{name}")
        return state.snapshot_id if state else None

    def sound(self, name: str) -> None:
        table = self.tables.load(f"default.bronze.{name}")
        assert table is not None
        assert missing_files(table) == []

    def settle(self) -> None:
        """Wait out any outage, then give connection pools a moment to notice."""
        while self.proxy.in_outage():
            time.sleep(0.2)
        self.proxy.calm()


@pytest.fixture(scope="module")
def world(pg_base: str, template_db: str, s3_server: S3Server) -> Iterator[World]:
    proxy = FaultProxy(s3_server.port)
    proxy.start()
    bucket = s3_server.make_bucket()
    env = {**s3_server.env(bucket), "RAT_S3_ENDPOINT": proxy.endpoint}
    dsn = asyncio.run(clone_database(pg_base, template_db))
    server = RatServer(dsn, Path(tempfile.mkdtemp(prefix="rat-s3fault-", dir="/tmp")), env)
    storage = StorageSpec(kind="s3", bucket=bucket, endpoint=s3_server.endpoint,
                          access_key="test", secret_key="test", use_ssl=False)
    tables = IcebergTables(CatalogSpec(type="sql", uri=sqlalchemy_url(dsn), name="rat",
                                       warehouse=f"s3://{bucket}/_warehouse", storage=storage))
    try:
        server.start()
        yield World(server, proxy, tables)
    finally:
        server.stop()
        proxy.stop()


def _seeded(world: World, client: httpx.Client, rows: int = 200_000) -> tuple[str, int]:
    name = unique("s3f")
    create_pipeline(client, name, SOURCE.format(n=rows), "append_only")
    first = run(client, name)
    assert first["status"] == "success", first
    snap = world.snapshot(name)
    assert snap is not None
    return name, snap


def _survived(world: World, client: httpx.Client, name: str, before: int, rows: int,
              outcome: dict[str, Any]) -> None:
    """Succeeded (one more copy) or failed with the table untouched; files all present."""
    if outcome["status"] == "success":
        assert world.snapshot(name) != before
        assert count(client, name) == 2 * rows
    else:
        assert outcome["status"] == "failed", outcome
        assert world.snapshot(name) == before, outcome
        assert count(client, name) == rows
    world.sound(name)


def test_latency_is_only_slower(world: World) -> None:
    with world.server.client() as client:
        name, before = _seeded(world, client)
        world.proxy.latency = 0.02
        try:
            outcome = run(client, name)
        finally:
            world.proxy.calm()
        assert outcome["status"] == "success", outcome
        _survived(world, client, name, before, 200_000, outcome)


@pytest.mark.parametrize("trigger", [(b"POST ", b"?uploads"), (b"PUT ", b".metadata.json")],
                         ids=["worker-upload", "parent-commit"])
def test_a_short_reset_storm_is_ridden_out(world: World, trigger: tuple[bytes, ...]) -> None:
    """Every request is reset for 2 s from the first upload (worker, DuckDB httpfs) or metadata
    write (parent, pyiceberg); each client's retries must outlast it, so the run succeeds."""
    with world.server.client() as client:
        name, before = _seeded(world, client)
        world.proxy.resets = 0
        world.proxy.outage_on(trigger, STORM_SECONDS)
        outcome = run(client, name)
        assert world.proxy.triggered[-1:] == [trigger], "the storm never started"
        world.settle()
        assert world.proxy.resets >= 1
        assert outcome["status"] == "success", outcome
        _survived(world, client, name, before, 200_000, outcome)


@pytest.mark.parametrize("trigger", [(b"PUT ", b"partNumber="), (b"PUT ", b".metadata.json")],
                         ids=["mid-upload", "mid-commit"])
def test_outage_mid_run(world: World, trigger: tuple[bytes, ...]) -> None:
    with world.server.client() as client:
        name, before = _seeded(world, client)
        world.proxy.outage_on(trigger, OUTAGE_SECONDS)
        outcome = run(client, name, timeout=240)
        assert world.proxy.triggered[-1:] == [trigger], "the outage never started"
        world.settle()
        _survived(world, client, name, before, 200_000, outcome)
        assert httpx.get(f"{world.server.url}/health/ready", timeout=10).status_code == 200
        after = world.snapshot(name)
        again = run(client, name)
        assert again["status"] == "success", again
        assert world.snapshot(name) != after
        world.sound(name)
