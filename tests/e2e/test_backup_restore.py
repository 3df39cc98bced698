"""Backup, wipe, restore into a fresh data directory (or database and bucket): all is back.

The backup is taken while the server runs; the restore target is a different location, so the
Iceberg tables must be relocated to stay readable, and writable by new runs.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import ROOT, RatServer, S3Server, clone_database, dsn_for, unique, wait_run


def _rat(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rat", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


def _env(server: RatServer) -> dict[str, str]:
    env = server.env()
    env.pop("RAT_PORT", None)
    return env


def _run(client: httpx.Client, layer: str, name: str) -> None:
    resp = client.post("/runs", json={"namespace": "default", "layer": layer, "pipeline": name})
    run = wait_run(client, resp.json()["run_id"])
    assert run["status"] == "success", run


def _seed(client: httpx.Client) -> tuple[str, str]:
    """Two pipelines (one reading the other), several snapshots, a draft file."""
    up, down = unique("orders"), unique("totals")
    for layer, name, sql in (
            ("bronze", up, "SELECT range AS id, range * 10 AS amount FROM range(5)"),
            ("gold", down, f"SELECT sum(amount) AS total, count(*) AS n "
                           f"FROM {{{{ ref('bronze.{up}') }}}}")):
        client.post("/pipelines", json={"namespace": "default", "layer": layer, "name": name,
                                        "source": sql}).raise_for_status()
    _run(client, "bronze", up)
    client.put(f"/files/default/pipelines/bronze/{up}/pipeline.sql",
               json={"content": "SELECT range AS id, range * 10 AS amount FROM range(7)"}
               ).raise_for_status()
    _run(client, "bronze", up)
    _run(client, "gold", down)
    client.put(f"/files/default/pipelines/gold/{down}/notes.md",
               json={"content": "kept across restore"}).raise_for_status()
    return up, down


def _state(client: httpx.Client, up: str, down: str) -> dict[str, Any]:
    def query(sql: str) -> Any:
        resp = client.post("/query", json={"sql": sql})
        assert resp.status_code == 200, resp.text
        return resp.json()["rows"]

    runs = client.get("/runs", params={"limit": 200, "sort": "created_at"}).json()["runs"]
    return {
        "pipelines": sorted((p["layer"], p["name"]) for p in
                            client.get("/pipelines", params={"limit": 200}).json()["pipelines"]),
        "runs": [(r["id"], r["status"], r["rows_written"], r["snapshot_id"]) for r in runs],
        "bronze": query(f"SELECT id, amount FROM bronze.{up} ORDER BY id"),
        "gold": query(f"SELECT total, n FROM gold.{down}"),
        "files": sorted(f["path"] for f in client.get("/files", params={"prefix": "default/"}).json()["files"]),
        "notes": client.get(f"/files/default/pipelines/gold/{down}/notes.md").json()["content"],
        "tables": sorted((t["layer"], t["name"], t["row_count"]) for t in
                         client.get("/tables").json()["tables"]),
    }


def _check_restored(server: RatServer, up: str, down: str, before: dict[str, Any]) -> None:
    with server.client() as client:
        assert _state(client, up, down) == before
        # The relocated tables take new writes: a run appends a snapshot and reads the old ones.
        _run(client, "gold", down)
        rows = client.post("/query", json={"sql": f"SELECT total, n FROM gold.{down}"}).json()
        assert rows["rows"] == [{"total": 210, "n": 7}]


def test_backup_wipe_restore_into_a_fresh_data_dir(tmp_path: Path) -> None:
    """Zero-config install: embedded Postgres and local storage under the data directory."""
    source_dir = Path(tempfile.mkdtemp(prefix="rat-bk-src-", dir="/tmp"))
    server = RatServer("", source_dir)
    server.start()
    try:
        with server.client() as client:
            up, down = _seed(client)
            before = _state(client, up, down)
        backup = tmp_path / "backup"
        done = _rat(_env(server), "backup", str(backup))  # while the server runs
        assert done.returncode == 0, done.stderr
        assert "backup written to" in done.stdout
    finally:
        assert server.stop() == 0
    manifest = json.loads((backup / "manifest.json").read_text())
    assert manifest["storage"]["root"] == f"{source_dir / 'storage'}/"
    assert any(f["key"].endswith(".metadata.json") for f in manifest["files"])
    shutil.rmtree(source_dir)  # wipe

    fresh = Path(tempfile.mkdtemp(prefix="rat-bk-dst-", dir="/tmp"))
    target = RatServer("", fresh)
    done = _rat(_env(target), "restore", str(backup))
    assert done.returncode == 0, done.stderr
    assert "tables relocated from" in done.stdout
    target.start()
    try:
        _check_restored(target, up, down, before)
    finally:
        assert target.stop() == 0

    again = _rat(_env(target), "restore", str(backup))
    assert again.returncode == 1
    assert "holds RAT data" in again.stderr


def test_backup_restore_external_postgres_and_s3(pg_base: str, template_db: str,
                                                 s3_server: S3Server, tmp_path: Path) -> None:
    """Production layout: external Postgres and an S3 bucket, restored into new ones."""
    dsn = asyncio.run(clone_database(pg_base, template_db))
    server = RatServer(dsn, Path(tempfile.mkdtemp(prefix="rat-bk-s3-", dir="/tmp")),
                       s3_server.env(s3_server.make_bucket()))
    server.start()
    try:
        with server.client() as client:
            up, down = _seed(client)
            before = _state(client, up, down)
        backup = tmp_path / "backup"
        done = _rat(_env(server), "backup", str(backup))
        assert done.returncode == 0, done.stderr
    finally:
        server.stop()

    new_dsn = asyncio.run(_empty_database(pg_base))
    bucket = s3_server.make_bucket()
    target = RatServer(new_dsn, Path(tempfile.mkdtemp(prefix="rat-bk-s3b-", dir="/tmp")),
                       s3_server.env(bucket))
    done = _rat(_env(target), "restore", str(backup))
    assert done.returncode == 0, done.stderr
    assert f"s3://{bucket}/" in done.stderr
    target.start()
    try:
        _check_restored(target, up, down, before)
    finally:
        target.stop()


def test_restore_refuses_a_tampered_backup(tmp_path: Path) -> None:
    source_dir = Path(tempfile.mkdtemp(prefix="rat-bk-bad-", dir="/tmp"))
    server = RatServer("", source_dir)
    server.start()
    try:
        with server.client() as client:
            client.post("/pipelines", json={"namespace": "default", "layer": "bronze",
                                            "name": "seed"}).raise_for_status()
        backup = tmp_path / "backup"
        assert _rat(_env(server), "backup", str(backup)).returncode == 0
        refused = _rat(_env(server), "backup", str(backup))
        assert refused.returncode == 1
        assert "not empty" in refused.stderr
    finally:
        server.stop()
    entry = next(p for p in (backup / "storage").rglob("*") if p.is_file())
    entry.write_bytes(entry.read_bytes() + b"tampered")
    fresh = Path(tempfile.mkdtemp(prefix="rat-bk-bad2-", dir="/tmp"))
    done = _rat(_env(RatServer("", fresh)), "restore", str(backup))
    assert done.returncode == 1
    assert "wrong size" in done.stderr or "checksum" in done.stderr
    assert not (fresh / "pg").exists()  # nothing was touched
    (backup / "manifest.json").unlink()
    done = _rat(_env(RatServer("", fresh)), "restore", str(backup))
    assert "incomplete" in done.stderr


async def _empty_database(pg_base: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg_base)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    return dsn_for(pg_base, name)


