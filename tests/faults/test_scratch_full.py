"""The scratch area fills up mid-run: the run fails with a clear message, nothing else breaks.

The data dir's tmp/ (where each run's scratch directory lives, `<data>/tmp/runs/<run id>`) is a
20 MB tmpfs; the pipeline's batch needs far more. Needs root (mount); skipped otherwise.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RatServer, clone_database, unique
from tests.faults.support import count, create_pipeline, run, table_info

pytestmark = pytest.mark.timeout(300)
SMALL = "SELECT range AS id, md5(range::VARCHAR) AS a, md5((range + 1)::VARCHAR) AS b " \
        "FROM range({n})"


@pytest.fixture
def tiny_tmp() -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    data_dir = Path(tempfile.mkdtemp(prefix="rat-full-", dir="/tmp"))
    tmp = data_dir / "tmp"
    tmp.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20m", "tmpfs", str(tmp)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield data_dir
    finally:
        subprocess.run(["umount", "-l", str(tmp)], check=False)


def test_scratch_disk_full(pg_base: str, template_db: str, tiny_tmp: Path) -> None:
    dsn = asyncio.run(clone_database(pg_base, template_db))
    server = RatServer(dsn, tiny_tmp)
    server.start()
    name = unique("full")
    try:
        with server.client() as client:
            create_pipeline(client, name, SMALL.format(n=1000), "append_only")
            assert run(client, name)["status"] == "success"
            before = table_info(client, name)
            assert before["row_count"] == 1000

            path = f"default/pipelines/bronze/{name}/pipeline.sql"
            wrote = client.put(f"/files/{path}", json={"content": SMALL.format(n=3_000_000)})
            assert wrote.status_code == 200, wrote.text
            failed = run(client, name)
            assert failed["status"] == "failed", failed
            error = failed["error"] or ""
            assert "No space left on device" in error or "disk is full" in error.lower(), error
            assert "scratch" in error.lower(), error

            assert httpx.get(f"{server.url}/health/ready", timeout=5).status_code == 200
            after = table_info(client, name)
            assert after["snapshot_id"] == before["snapshot_id"]
            assert count(client, name) == 1000
            # The failed run's scratch files are gone: the next run has the space again.
            assert not any((tiny_tmp / "tmp" / "runs").glob(f"{failed['id']}/*"))
            client.put(f"/files/{path}", json={"content": SMALL.format(n=500)})
            assert run(client, name)["status"] == "success"
            assert count(client, name) == 1500
    finally:
        server.stop()
