"""An external plugin package, discovered through the `rat.plugins` entry-point group end to end.

The package is written to a temporary directory as an installed distribution (a module plus a
`.dist-info` with `entry_points.txt`) and put on the server's PYTHONPATH: nothing is installed into
the shared environment. It fills a merge strategy (runner side: used inside the worker process)
and an event listener; a second entry point raises while activating, a third name is unknown.
"""

from __future__ import annotations

import asyncio
import json
import os
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import ROOT, RatServer, start_server, unique, wait_run

PLUGIN_SOURCE = '''
"""A demo RAT plugin: a merge strategy and an event listener."""
import asyncio
import json
from typing import ClassVar

import msgspec

from rat.engine.write import AppendOnly, WritePlan


class Config(msgspec.Struct):
    events_file: str


class TwiceAppend(AppendOnly):
    """Appends every batch row twice (observable proof that this code ran in the worker)."""

    name = "demo_twice"
    required: ClassVar[tuple[str, ...]] = ()

    def plan(self, ctx):
        added, rows = ctx.write(ctx.batch_select() + " UNION ALL " + ctx.batch_select())
        return WritePlan(added_files=added, rows_written=rows)


class Listener:
    def __init__(self, path):
        self.path = path

    async def on_event(self, event):
        with open(self.path, "a") as fh:
            fh.write(json.dumps({"type": event.type, "data": event.data}) + "\\n")
        if event.type == "pipeline_created":
            raise RuntimeError("listeners may fail; RAT keeps going")


class DemoPlugin:
    name = "rat-demo"
    version = "0.1.0"
    slots = ("merge_strategy", "event_listener")
    config_type = Config

    def activate(self, ctx):
        ctx.provide("event_listener", Listener(ctx.config.events_file))

    def activate_runner(self, ctx):
        ctx.add_strategy(TwiceAppend)


class BoomPlugin:
    name = "rat-boom"
    version = "0.0.1"
    slots = ("event_listener",)
    config_type = None

    def activate(self, ctx):
        raise RuntimeError("boom: cannot reach the thing")


plugin = DemoPlugin
boom = BoomPlugin
'''


def write_package(root: Path) -> None:
    (root / "ratdemo").mkdir(parents=True)
    (root / "ratdemo" / "__init__.py").write_text(PLUGIN_SOURCE)
    info = root / "ratdemo-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ratdemo\nVersion: 0.1.0\n")
    (info / "top_level.txt").write_text("ratdemo\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [rat.plugins]
        rat-demo = ratdemo:plugin
        rat-boom = ratdemo:boom
        """))


@pytest.fixture(scope="module")
def plugin_server(pg_base: str, template_db: str, tmp_path_factory: pytest.TempPathFactory,
                  ) -> Iterator[tuple[RatServer, Path]]:
    root = tmp_path_factory.mktemp("plugpkg")
    write_package(root / "site")
    events = root / "events.jsonl"
    config = root / "rat.yaml"
    config.write_text(json.dumps({"plugins": {
        "rat-demo": {"enabled": True, "config": {"events_file": str(events)}},
        "rat-boom": {"enabled": True}, "rat-missing": {"enabled": True}}}))
    path = os.pathsep.join([str(root / "site"), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    server = start_server(pg_base, template_db, "local", None,
                          {"RAT_CONFIG": str(config), "PYTHONPATH": path})
    try:
        yield server, events
    finally:
        server.stop()


def test_external_plugin_discovered_end_to_end(plugin_server: tuple[RatServer, Path]) -> None:
    server, events = plugin_server
    with server.client() as client:
        features = client.get("/features").json()
        assert features["edition"] == "community"
        assert features["plugins"]["rat-demo"] == {"enabled": True, "type": "platform"}
        assert features["plugins"]["rat-boom"]["enabled"] is False
        entries = {p["name"]: p for p in client.get("/plugins").json()}
        assert entries["rat-demo"]["status"] == "enabled"
        assert entries["rat-demo"]["version"] == "0.1.0"
        assert entries["rat-demo"]["slots"] == ["merge_strategy", "event_listener"]
        assert entries["rat-demo"]["descriptor"]["package"] == "ratdemo"
        runner = client.get("/runner/plugins").json()
        assert {"name": "demo_twice", "group": "rat.strategies", "version": "0.1.0",
                "package_name": "ratdemo"} in runner

        name = unique("twice")
        created = client.post("/pipelines", json={
            "namespace": "default", "layer": "bronze", "name": name,
            "source": "SELECT * FROM range(3) t(id)", "merge_strategy": "demo_twice"})
        assert created.status_code == 201, created.text
        run = client.post("/runs", json={"namespace": "default", "layer": "bronze",
                                         "pipeline": name}).json()
        done = wait_run(client, run["run_id"])
        assert done["status"] == "success", done
        assert done["rows_written"] == 6
        rows = client.post("/query", json={"sql": f"SELECT count(*) AS n FROM bronze.{name}"})
        assert rows.json()["rows"] == [{"n": 6}]

    deadline = time.monotonic() + 10
    seen: list[str] = []
    while time.monotonic() < deadline:
        seen = [json.loads(line)["type"] for line in events.read_text().splitlines()] \
            if events.exists() else []
        if "run_completed" in seen:
            break
        time.sleep(0.1)
    assert "pipeline_created" in seen
    assert "run_created" in seen
    assert "run_completed" in seen


async def _listen_while(dsn: str, action: Any) -> list[dict[str, Any]]:
    conn = await asyncpg.connect(dsn)
    got: list[dict[str, Any]] = []
    try:
        await conn.add_listener("rat_events", lambda *a: got.append(json.loads(a[3])))
        await asyncio.to_thread(action)
        for _ in range(50):
            if any(e["type"] == "pipeline_created" for e in got):
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    return got


def test_events_are_sent_as_postgres_notify(plugin_server: tuple[RatServer, Path]) -> None:
    server, _events = plugin_server
    name = unique("notify")

    def create() -> None:
        with server.client() as client:
            assert client.post("/pipelines", json={"layer": "silver", "name": name}).status_code \
                == 201

    got = asyncio.run(_listen_while(server.dsn, create))
    assert {"type": "pipeline_created", "data": {"namespace": "default", "layer": "silver",
                                                 "name": name}} in got


def test_failing_and_unknown_plugins_are_reported(plugin_server: tuple[RatServer, Path]) -> None:
    server, _events = plugin_server
    with server.client() as client:
        entries = {p["name"]: p for p in client.get("/plugins").json()}
        assert entries["rat-boom"]["status"] == "error"
        assert "boom: cannot reach the thing" in entries["rat-boom"]["error"]
        assert entries["rat-missing"]["status"] == "error"
        assert "not found" in entries["rat-missing"]["error"]
        assert client.get("/plugins", params={"status": "error"}).status_code == 200
        assert client.get("/plugins/rat-nope").status_code == 404
        assert httpx.get(f"{server.url}/health/ready").status_code == 200
        assert client.put("/plugins/rat-demo/enable").status_code == 501
        assert client.get("/plugin-sources").json()["error"]["code"] == "NOT_IMPLEMENTED"
    log = server.log_path.read_text()
    assert "plugin rat-boom disabled: RuntimeError: boom: cannot reach the thing" in log
