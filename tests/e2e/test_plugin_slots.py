"""Single-instance slots filled by an external plugin package: storage, catalog and executor.

Like tests/e2e/test_plugins.py, the package is written to a temporary directory as an installed
distribution and put on the server's PYTHONPATH. `rat-journal-storage` is a thin wrapper over the
local backend, rooted in a directory of its own, that journals every object it reads or changes;
`rat-sqlite-catalog` keeps the Iceberg catalog in a SQLite file instead of the state Postgres;
`rat-one-worker` is the local worker pool with one worker, journaling each run it executes. A
pipeline is created, run and queried: its files go through the plugin's store, the run reads them
through it and executes on the plugin's pool, the table's files land under the plugin's root and
the table is registered in the SQLite catalog. A plugin selected for a single-instance slot that
fails stops start-up with one line naming it (exit code 2).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.conftest import ROOT, RatServer, free_port, start_server, unique, wait_run

PLUGIN_SOURCE = '''
"""Slot plugins for RAT: a journaling local store, a SQLite Iceberg catalog, a one-worker pool."""
import contextlib
import json
import threading
from pathlib import Path

import msgspec

from rat.core.specs import StorageSpec
from rat.engine.catalog import io_properties
from rat.runtime.workers import WorkerPool
from rat.storage.local import LocalStore


def note(journal, op, key):
    with open(journal, "a") as fh:
        fh.write(json.dumps({"op": op, "key": key}) + "\\n")


class StorageConfig(msgspec.Struct):
    root: str
    journal: str


class JournalStore(LocalStore):
    """The local backend, journaling every object it reads or changes."""

    def __init__(self, root, journal):
        super().__init__(Path(root))
        self.journal = journal
        self.lock = threading.Lock()

    def _note(self, op, key):
        with self.lock:
            note(self.journal, op, key)

    def read(self, key):
        self._note("read", key)
        return super().read(key)

    def write(self, key, data):
        super().write(key, data)
        self._note("write", key)

    def put_file(self, key, source):
        super().put_file(key, source)
        self._note("write", key)

    def adopt_file(self, key, source):
        super().adopt_file(key, source)
        self._note("write", key)

    def move(self, source, target):
        super().move(source, target)
        self._note("move", target)

    def delete(self, key):
        self._note("delete", key)
        return super().delete(key)


class JournalStorage:
    name = "rat-journal-storage"
    version = "0.2.0"
    slots = ("storage",)
    config_type = StorageConfig

    def activate(self, ctx):
        ctx.provide("storage", self)
        self.config = ctx.config

    def open_store(self, settings):
        return JournalStore(self.config.root, self.config.journal)

    def storage_spec(self, settings):
        return StorageSpec(kind="local", root=self.config.root)


class CatalogConfig(msgspec.Struct):
    path: str


class SqliteCatalog:
    name = "rat-sqlite-catalog"
    version = "0.2.0"
    slots = ("catalog",)
    config_type = CatalogConfig

    def activate(self, ctx):
        self.path = ctx.config.path
        ctx.provide("catalog", self)

    def open_catalog(self, spec):
        from pyiceberg.catalog.sql import SqlCatalog

        return SqlCatalog(spec.name, uri="sqlite:///" + self.path, warehouse=spec.warehouse,
                          **io_properties(spec.storage))


class JournalExecutor(WorkerPool):
    """The local worker pool, one worker, journaling each run it lends a worker to."""

    def __init__(self, journal):
        super().__init__("run", 1, ("rat.plugins.runner",))
        self.journal = journal

    @contextlib.asynccontextmanager
    async def lease(self, *, retire=False):
        async with super().lease(retire=retire) as worker:
            note(self.journal, "lease", str(worker.pid))
            yield worker


class ExecutorConfig(msgspec.Struct):
    journal: str


class OneWorkerExecutor:
    name = "rat-one-worker"
    version = "0.2.0"
    slots = ("executor",)
    config_type = ExecutorConfig

    def activate(self, ctx):
        ctx.provide("executor", JournalExecutor(ctx.config.journal))


class BrokenStorage:
    name = "rat-broken-storage"
    version = "0.0.1"
    slots = ("storage",)
    config_type = None

    def activate(self, ctx):
        raise RuntimeError("cannot mount the volume")


class UnopenableStorage(BrokenStorage):
    name = "rat-unopenable-storage"

    def activate(self, ctx):
        ctx.provide("storage", self)

    def open_store(self, settings):
        raise OSError("bucket is gone")

    def storage_spec(self, settings):
        return StorageSpec(kind="local", root="/nonexistent")


class UnopenableCatalog(SqliteCatalog):
    name = "rat-unopenable-catalog"
    config_type = None

    def activate(self, ctx):
        ctx.provide("catalog", self)

    def open_catalog(self, spec):
        raise ConnectionError("catalog service refused the connection")


storage = JournalStorage
catalog = SqliteCatalog
executor = OneWorkerExecutor
broken = BrokenStorage
unopenable = UnopenableStorage
unopenable_catalog = UnopenableCatalog
'''


def write_package(root: Path) -> None:
    (root / "ratslots").mkdir(parents=True)
    (root / "ratslots" / "__init__.py").write_text(PLUGIN_SOURCE)
    info = root / "ratslots-0.2.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ratslots\nVersion: 0.2.0\n")
    (info / "top_level.txt").write_text("ratslots\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [rat.plugins]
        rat-journal-storage = ratslots:storage
        rat-sqlite-catalog = ratslots:catalog
        rat-one-worker = ratslots:executor
        rat-broken-storage = ratslots:broken
        rat-unopenable-storage = ratslots:unopenable
        rat-unopenable-catalog = ratslots:unopenable_catalog
        """))


class Slots:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.objects = root / "objects"
        self.journal = root / "journal.jsonl"
        self.catalog = root / "catalog.db"
        self.config = root / "rat.yaml"
        self.path = os.pathsep.join([str(root / "site"), str(ROOT / "src"),
                                     os.environ.get("PYTHONPATH", "")])

    def entries(self) -> list[dict[str, str]]:
        return [json.loads(line) for line in self.journal.read_text().splitlines()]

    def env(self, **extra: str) -> dict[str, str]:
        return {"RAT_CONFIG": str(self.config), "PYTHONPATH": self.path, **extra}


@pytest.fixture(scope="module")
def slots(tmp_path_factory: pytest.TempPathFactory) -> Slots:
    found = Slots(tmp_path_factory.mktemp("slots"))
    write_package(found.root / "site")
    found.config.write_text(json.dumps({"plugins": {
        "rat-journal-storage": {"enabled": True, "config": {
            "root": str(found.objects), "journal": str(found.journal)}},
        "rat-sqlite-catalog": {"enabled": True, "config": {"path": str(found.catalog)}},
        "rat-one-worker": {"enabled": True, "config": {"journal": str(found.journal)}}}}))
    return found


@pytest.fixture(scope="module")
def server(pg_base: str, template_db: str, slots: Slots) -> Iterator[RatServer]:
    started = start_server(pg_base, template_db, "local", None, slots.env())
    try:
        yield started
    finally:
        started.stop()


async def _postgres_catalog_tables(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        if not await conn.fetchval("SELECT to_regclass('public.iceberg_tables') IS NOT NULL"):
            return []
        return [r["table_name"] for r in await conn.fetch("SELECT table_name FROM iceberg_tables")]
    finally:
        await conn.close()


def test_storage_catalog_and_executor_plugins_serve_a_run(server: RatServer,
                                                          slots: Slots) -> None:
    name = unique("slots")
    with server.client() as client:
        entries = {p["name"]: p for p in client.get("/plugins").json()}
        assert entries["rat-journal-storage"]["status"] == "enabled"
        assert entries["rat-journal-storage"]["slots"] == ["storage"]
        assert entries["rat-sqlite-catalog"]["status"] == "enabled"
        created = client.post("/pipelines", json={
            "namespace": "default", "layer": "bronze", "name": name,
            "source": "SELECT * FROM range(5) t(id)"})
        assert created.status_code == 201, created.text
        run = client.post("/runs", json={"namespace": "default", "layer": "bronze",
                                         "pipeline": name}).json()
        done = wait_run(client, run["run_id"])
        assert done["status"] == "success", done["error"]
        rows = client.post("/query", json={"sql": f"SELECT count(*) AS n FROM bronze.{name}"})
        assert rows.json()["rows"] == [{"n": 5}]

    source = f"default/pipelines/bronze/{name}/pipeline.sql"
    journal = slots.entries()
    assert {"op": "write", "key": source} in journal  # the API wrote through the plugin
    assert {"op": "read", "key": source} in journal  # the run read its files through it
    assert any(e["op"] == "lease" for e in journal)  # and ran on the plugin's executor
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'rat_worker_pool_size{pool="run"} 1' in metrics  # its size, not RAT_WORKERS=2
    assert (slots.objects / source).read_text() == "SELECT * FROM range(5) t(id)"
    assert not (server.data_dir / "storage" / source).exists()
    table_dir = slots.objects / "_warehouse" / "default" / "bronze" / name
    assert list((table_dir / "data").rglob("*.parquet")), "the run wrote under the plugin root"

    with sqlite3.connect(slots.catalog) as db:
        registered = db.execute("SELECT table_namespace, table_name, metadata_location "
                                "FROM iceberg_tables WHERE table_name = ?", (name,)).fetchall()
    assert len(registered) == 1
    assert registered[0][0] == "default.bronze"
    assert registered[0][2].startswith(str(table_dir))
    assert name not in asyncio.run(_postgres_catalog_tables(server.dsn))
    ready = httpx.get(f"{server.url}/health/ready").json()
    assert ready["checks"]["catalog"] == {"status": "ok"}
    assert ready["checks"]["storage"] == {"status": "ok"}


def _serve_fails(slots: Slots, plugin: str, server: RatServer) -> subprocess.CompletedProcess[str]:
    env = {**server.env(), **slots.env(RAT_PLUGINS=plugin, RAT_PORT=str(free_port()))}
    return subprocess.run([sys.executable, "-m", "rat", "serve"], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("plugin", "reason"), [
    ("rat-broken-storage", "(slot storage) failed: RuntimeError: cannot mount the volume"),
    ("rat-unopenable-storage",
     "(slot storage) failed to open its store: OSError: bucket is gone"),
    ("rat-unopenable-catalog", "(slot catalog) failed to open its catalog: "
                               "ConnectionError: catalog service refused the connection"),
])
def test_failing_single_slot_plugin_stops_start_up(server: RatServer, slots: Slots, plugin: str,
                                                   reason: str) -> None:
    out = _serve_fails(slots, plugin, server)
    assert out.returncode == 2, out.stderr[-2000:]
    lines = out.stderr.strip().splitlines()
    assert lines[-1] == f"rat: plugin {plugin} {reason}"
