"""Helpers shared by the fault tests: a test-only fault plugin, table inspection, HTTP steps."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, wait_run

# Arms `rat.engine.faults` inside engine workers (their environment is scrubbed, so the plugin
# config is the channel): the first run that reaches the armed point SIGKILLs its worker and
# leaves a marker, so a rerun passes.
FAULT_PLUGIN = '''
"""Test-only: kill the engine worker once at a fault point."""
import os
import sys
from pathlib import Path

import msgspec

from rat.engine import faults


class Config(msgspec.Struct):
    point: str
    marker: str


def _in_worker():
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    return spec is not None and spec.name == "rat.engine.workerproc"


class FaultPlugin:
    name = "rat-fault"
    version = "0.1.0"
    slots = ("hook",)
    config_type = Config

    def activate_runner(self, ctx):
        marker = Path(ctx.config.marker)

        def once(info):
            if marker.exists() or not _in_worker():
                return
            marker.write_text("\\n".join(info.get("added_files", [])))
            faults.kill_self(info)

        faults.arm(ctx.config.point, once)
        # A runner plugin is handed to workers only when it registers something.
        ctx.add_hook("pre_write", armed_fault)


def armed_fault(_ctx):
    pass


plugin = FaultPlugin
'''


def fault_plugin_env(root: Path, point: str) -> tuple[dict[str, str], Path]:
    """Server env that installs the fault plugin from `root`; returns it and the marker path."""
    site = root / "site"
    (site / "ratfault").mkdir(parents=True)
    (site / "ratfault" / "__init__.py").write_text(FAULT_PLUGIN)
    info = site / "ratfault-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: ratfault\nVersion: 0.1.0\n")
    (info / "top_level.txt").write_text("ratfault\n")
    (info / "entry_points.txt").write_text(textwrap.dedent("""\
        [rat.plugins]
        rat-fault = ratfault:plugin
        """))
    marker = root / "fired"
    config = root / "rat.yaml"
    config.write_text(json.dumps({"plugins": {"rat-fault": {
        "enabled": True, "config": {"point": point, "marker": str(marker)}}}}))
    path = os.pathsep.join([str(site), str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    # The plugin arms itself through a marker file outside any job's view: no sandbox here
    # (tests/security covers the sandbox; these tests cover the commit protocol).
    return {"RAT_CONFIG": str(config), "PYTHONPATH": path, "RAT_SANDBOX": "off"}, marker


def create_pipeline(client: httpx.Client, name: str, source: str, strategy: str,
                    layer: str = "bronze", **config: Any) -> None:
    body = {"namespace": "default", "layer": layer, "name": name, "source": source,
            "merge_strategy": strategy, **config}
    created = client.post("/pipelines", json=body)
    assert created.status_code == 201, created.text


def run(client: httpx.Client, name: str, layer: str = "bronze",
        timeout: float = 120) -> dict[str, Any]:
    started = client.post("/runs", json={"namespace": "default", "layer": layer,
                                         "pipeline": name})
    assert started.status_code in (200, 201, 202), started.text
    return wait_run(client, started.json()["run_id"], timeout)


def table_info(client: httpx.Client, name: str, layer: str = "bronze") -> dict[str, Any]:
    resp = client.get(f"/tables/default/{layer}/{name}")
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def count(client: httpx.Client, name: str, layer: str = "bronze") -> int:
    out = client.post("/query", json={"sql": f"SELECT count(*) AS n FROM {layer}.{name}"})
    assert out.status_code == 200, out.text
    return int(out.json()["rows"][0]["n"])


def local_catalog(dsn: str, data_dir: Path) -> Any:
    """The catalog a local-storage `rat serve` uses (same Postgres, same warehouse)."""
    from rat.app import sqlalchemy_url
    from rat.core.specs import StorageSpec
    from rat.engine.catalog import CatalogSpec, IcebergTables

    root = data_dir / "storage"
    return IcebergTables(CatalogSpec(type="sql", uri=sqlalchemy_url(dsn), name="rat",
                                     warehouse=str(root / "_warehouse"),
                                     storage=StorageSpec(kind="local", root=str(root))))


def referenced(table: Any) -> set[str]:
    """Every file the table's metadata references (all snapshots), as plain paths/URIs."""
    from rat.engine import maintenance

    return maintenance.table_files(table)


def missing_files(table: Any) -> list[str]:
    """Referenced files that do not exist (a half-written commit would show up here)."""
    return sorted(p for p in referenced(table) if not table.io.new_input(p).exists())
