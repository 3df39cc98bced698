"""Helpers for the data-access e2e tests: tables made by real runs, state and storage checks."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from tests.conftest import RatServer, wait_run


def make_table(client: httpx.Client, layer: str, name: str, sql: str,
               namespace: str = "default") -> dict[str, object]:
    """Create (or rewrite) a pipeline with `sql` and run it to success."""
    if client.get(f"/pipelines/{namespace}/{layer}/{name}").status_code == 404:
        resp = client.post("/pipelines", json={"namespace": namespace, "layer": layer,
                                               "name": name, "source": sql})
        assert resp.status_code == 201, resp.text
    else:
        path = f"{namespace}/pipelines/{layer}/{name}/pipeline.sql"
        assert client.put(f"/files/{path}", json={"content": sql}).status_code == 200
    resp = client.post("/runs", json={"namespace": namespace, "layer": layer, "pipeline": name})
    assert resp.status_code == 202, resp.text
    run = wait_run(client, resp.json()["run_id"], timeout=300)
    assert run["status"] == "success", run
    return run


def sql(server: RatServer, statement: str, *args: Any) -> list[dict[str, Any]]:
    """Run one statement on the server's state database (test set-up and inspection)."""
    async def go() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(server.dsn)
        try:
            return [dict(r) for r in await conn.fetch(statement, *args)]
        finally:
            await conn.close()

    return asyncio.run(go())


def stored_keys(server: RatServer, prefix: str) -> list[str]:
    """Object keys under `prefix` in the server's storage (local directory or S3 bucket)."""
    bucket = server.extra_env.get("RAT_S3_BUCKET")
    if not bucket:
        root = server.data_dir / "storage"
        base = root / prefix
        return sorted(str(p.relative_to(root)) for p in base.rglob("*") if p.is_file()) \
            if base.exists() else []
    from minio import Minio

    endpoint = server.extra_env["RAT_S3_ENDPOINT"].split("://", 1)[1]
    client = Minio(endpoint, access_key="test", secret_key="test", secure=False,
                   region="us-east-1")
    return sorted(o.object_name for o in client.list_objects(bucket, prefix=prefix,
                                                             recursive=True))


def put_object(server: RatServer, key: str, data: bytes) -> None:
    bucket = server.extra_env.get("RAT_S3_BUCKET")
    if not bucket:
        path = Path(server.data_dir / "storage" / key)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    import io

    from minio import Minio

    endpoint = server.extra_env["RAT_S3_ENDPOINT"].split("://", 1)[1]
    client = Minio(endpoint, access_key="test", secret_key="test", secure=False,
                   region="us-east-1")
    client.put_object(bucket, key, io.BytesIO(data), len(data))


def add_zone(server: RatServer, namespace: str, zone: str, files: int = 1) -> None:
    """A landing zone with unprocessed files, as the landing slice would record it."""
    zone_id = uuid.uuid4()
    sql(server, "INSERT INTO landing_zones (id, namespace, name) VALUES ($1, $2, $3)",
        zone_id, namespace, zone)
    for i in range(files):
        key = f"{namespace}/landing/{zone}/20260101_000000_f{i}.csv"
        put_object(server, key, b"id\n1\n")
        sql(server, "INSERT INTO landing_files (id, zone_id, filename, s3_path, size_bytes)"
                    " VALUES ($1, $2, $3, $4, 5)", uuid.uuid4(), zone_id, f"f{i}.csv", key)
