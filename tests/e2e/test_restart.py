"""Restarting RAT keeps every pipeline, run and table (same database, same data directory)."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from tests.conftest import RatServer, clone_database, unique, wait_run


def test_restart_keeps_pipelines_runs_and_tables(pg_base: str, template_db: str) -> None:
    dsn = asyncio.run(clone_database(pg_base, template_db))
    data_dir = Path(tempfile.mkdtemp(prefix="rat-restart-", dir="/tmp"))
    name = unique("kept")
    server = RatServer(dsn, data_dir)
    server.start()
    try:
        with server.client() as client:
            client.post("/pipelines", json={"namespace": "default", "layer": "gold", "name": name,
                                            "source": "SELECT 42 AS answer"}).raise_for_status()
            run_id = client.post("/runs", json={"namespace": "default", "layer": "gold",
                                                "pipeline": name}).json()["run_id"]
            assert wait_run(client, run_id)["status"] == "success"
    finally:
        assert server.stop() == 0
    again = RatServer(dsn, data_dir)
    again.start()
    try:
        with again.client() as client:
            assert client.get(f"/pipelines/default/gold/{name}").status_code == 200
            assert client.get(f"/runs/{run_id}").json()["status"] == "success"
            out = client.post("/query", json={"sql": f"SELECT answer FROM gold.{name}"}).json()
            assert out["rows"] == [{"answer": 42}]
    finally:
        again.stop()


def test_embedded_postgres_survives_restart_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="rat-embedded-", dir="/tmp"))
    server = RatServer("", data_dir)
    server.start()
    try:
        with server.client() as client:
            client.post("/pipelines", json={"namespace": "default", "layer": "bronze",
                                            "name": "seed"}).raise_for_status()
    finally:
        assert server.stop() == 0
    assert not (data_dir / "pg" / "postmaster.pid").exists(), "embedded Postgres left running"
    again = RatServer("", data_dir)
    again.start()
    try:
        with again.client() as client:
            assert client.get("/pipelines/default/bronze/seed").status_code == 200
    finally:
        again.stop()
    assert not (data_dir / "pg" / "postmaster.pid").exists()
