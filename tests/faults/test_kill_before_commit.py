"""A worker killed after writing data files and before the commit changes nothing published.

Real `rat serve` (local storage), a test-only runner plugin arming `rat.engine.faults` so the
worker SIGKILLs itself between the strategy's parquet writes and the parent's catalog commit.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import RatServer, clone_database, unique
from tests.faults.support import (
    count,
    create_pipeline,
    fault_plugin_env,
    local_catalog,
    missing_files,
    referenced,
    run,
)

pytestmark = pytest.mark.timeout(300)
ROWS = 1000
FOUR_DAYS = 4 * 86_400


def test_kill_between_write_and_commit(pg_base: str, template_db: str,
                                       tmp_path: Path) -> None:
    env, marker = fault_plugin_env(tmp_path, "before_commit")
    dsn = asyncio.run(clone_database(pg_base, template_db))
    server = RatServer(dsn, Path(tempfile.mkdtemp(prefix="rat-kill-", dir="/tmp")), env)
    server.start()
    name = unique("killed")
    tables = local_catalog(dsn, server.data_dir)
    ident = f"default.bronze.{name}"
    try:
        with server.client() as client:
            marker.write_text("")  # disarmed for the first run
            create_pipeline(client, name, f"SELECT * FROM range({ROWS}) t(id)", "append_only")
            assert run(client, name)["status"] == "success"
            before = tables.load(ident)
            snap_before = before.current_snapshot().snapshot_id
            files_before = referenced(before)
            data_dir = Path(before.location()) / "data"
            on_disk_before = {str(p) for p in data_dir.rglob("*") if p.is_file()}
            assert count(client, name) == ROWS

            marker.unlink()  # armed: the next worker to reach the commit dies
            killed = run(client, name)
            assert killed["status"] == "failed", killed
            assert "worker process died" in (killed["error"] or ""), killed
            assert marker.exists(), "the fault point was never reached"

            after = tables.load(ident)
            assert after.current_snapshot().snapshot_id == snap_before
            assert f"rat_run_{killed['id'].replace('-', '')}" not in after.metadata.refs
            assert count(client, name) == ROWS
            assert missing_files(after) == []
            leftovers = {str(p) for p in data_dir.rglob("*") if p.is_file()} - on_disk_before
            written = {p for p in marker.read_text().splitlines() if p}
            assert written, "the strategy wrote no data files before the kill"
            assert written <= leftovers, (written, leftovers)
            assert all(killed["id"].replace("-", "") in p for p in written)
            assert not written & referenced(after)

            rerun = run(client, name)
            assert rerun["status"] == "success", rerun
            assert count(client, name) == 2 * ROWS  # exactly one more copy, not two

            # Age every file past the orphan limit (3 days): only unreferenced ones may go.
            table = tables.load(ident)
            keep = referenced(table)
            assert files_before <= keep
            past = time.time() - FOUR_DAYS
            for path in Path(table.location()).rglob("*"):
                if path.is_file():
                    os.utime(path, (past, past))
            swept = client.post("/admin/retention/run")
            assert swept.status_code == 202, swept.text
            assert swept.json()["orphan_files_removed"] >= len(written)
            assert not any(Path(p).exists() for p in written)
            table = tables.load(ident)
            assert missing_files(table) == []
            assert count(client, name) == 2 * ROWS
    finally:
        server.stop()
