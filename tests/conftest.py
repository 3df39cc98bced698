"""Shared fixtures: a real Postgres (embedded, once per session), per-test databases cloned from a
migrated template, a moto S3 server, and real `rat serve` processes driven over HTTP."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import httpx
import pytest

from rat.config import MIGRATIONS_DIR
from rat.db.database import Database, create_pool
from rat.db.embedded import EmbeddedPostgres
from rat.db.migrate import apply_migrations

if TYPE_CHECKING:
    from tests.e2e.oidc_support import FakeIdp

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts"
TEMPLATE_DB = "rat_tpl"
# Workers start with `python -P` (the server's working directory is not importable), so the test
# plugins and job modules under tests/ reach them the way an installed plugin would: on the path.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).relative_to(ROOT / "tests").parts
        marker = {"unit": "unit", "integration": "integration", "e2e": "integration",
                  "web": "integration", "faults": "integration", "browser": "browser"}.get(parts[0])
        if marker:
            item.add_marker(getattr(pytest.mark, marker))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dsn_for(base: str, dbname: str) -> str:
    """Swap the database name in a postgresql:// DSN (keeps host/socket query parameters)."""
    head, _, tail = base.partition("?")
    prefix = head.rsplit("/", 1)[0]
    return f"{prefix}/{dbname}" + (f"?{tail}" if tail else "")


@pytest.fixture(scope="session")
def pg_base() -> Iterator[str]:
    """DSN of a real Postgres server (RAT_TEST_DATABASE_URL, or an embedded one for the session)."""
    external = os.environ.get("RAT_TEST_DATABASE_URL")
    if external:
        yield external
        return
    root = Path(tempfile.mkdtemp(prefix="ratpg-", dir="/tmp"))
    server = EmbeddedPostgres(root / "pg")
    dsn = server.start()
    try:
        yield dsn
    finally:
        server.stop()


@pytest.fixture(scope="session")
async def template_db(pg_base: str) -> str:
    conn = await asyncpg.connect(pg_base)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB}")
        await conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    finally:
        await conn.close()
    await apply_migrations(dsn_for(pg_base, TEMPLATE_DB), MIGRATIONS_DIR)
    return TEMPLATE_DB


async def clone_database(pg_base: str, template: str) -> str:
    name = f"t_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(pg_base)
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
    finally:
        await conn.close()
    return dsn_for(pg_base, name)


async def drop_database(pg_base: str, dsn: str) -> None:
    name = dsn.partition("?")[0].rsplit("/", 1)[1]
    conn = await asyncpg.connect(pg_base)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await conn.close()


@pytest.fixture
async def db_dsn(pg_base: str, template_db: str) -> AsyncIterator[str]:
    dsn = await clone_database(pg_base, template_db)
    yield dsn
    await drop_database(pg_base, dsn)


@pytest.fixture
async def db(db_dsn: str) -> AsyncIterator[Database]:
    database = Database(await create_pool(db_dsn, 4), db_dsn)
    yield database
    await database.close()


class S3Server:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        self.port = free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def make_bucket(self) -> str:
        from minio import Minio

        bucket = f"rat-{uuid.uuid4().hex[:10]}"
        client = Minio(f"127.0.0.1:{self.port}", access_key="test", secret_key="test",
                       secure=False, region="us-east-1")
        client.make_bucket(bucket)
        return bucket

    def env(self, bucket: str) -> dict[str, str]:
        return {"RAT_S3_BUCKET": bucket, "RAT_S3_ENDPOINT": self.endpoint,
                "RAT_S3_ACCESS_KEY": "test", "RAT_S3_SECRET_KEY": "test",
                "RAT_S3_REGION": "us-east-1", "RAT_S3_USE_SSL": "false"}


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    server = S3Server()
    server.start()
    try:
        yield server
    finally:
        server.stop()


class RatServer:
    """A real `rat serve` process on a loopback port, with its own database and data dir."""

    def __init__(self, dsn: str, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.dsn = dsn
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir / "server.log"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RAT_")}
        if self.dsn:
            env["RAT_DATABASE_URL"] = self.dsn
        env.update({"RAT_DATA_DIR": str(self.data_dir),
                    "RAT_PORT": str(self.port), "RAT_WORKERS": "2", "RAT_QUERY_WORKERS": "1",
                    "RAT_LOG_FORMAT": "text", "RAT_RATE_LIMIT_RPS": "0",
                    "RAT_SCHEDULER_TICK_SECONDS": "1", **self.extra_env})
        return env

    def start(self, timeout: float = 90) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "rat", "serve"], env=self.env(),
                                     stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rat serve exited:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/health/ready", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"rat serve not ready:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = 15) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=f"{self.url}/api/v1", timeout=60)


def start_server(pg_base: str, template: str, backend: str, s3: S3Server | None,
                 extra_env: dict[str, str] | None = None) -> RatServer:
    dsn = asyncio.run(clone_database(pg_base, template))
    env = dict(extra_env or {})
    if backend == "s3":
        assert s3 is not None
        env.update(s3.env(s3.make_bucket()))
    server = RatServer(dsn, Path(tempfile.mkdtemp(prefix=f"rat-{backend}-", dir="/tmp")), env)
    server.start()
    return server


@pytest.fixture(scope="session", params=["local", "s3"])
def rat_server(request: pytest.FixtureRequest, pg_base: str, template_db: str,
               s3_server: S3Server) -> Iterator[RatServer]:
    """A running RAT per storage backend; tests use unique pipeline names to stay independent."""
    server = start_server(pg_base, template_db, request.param, s3_server)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", params=["local", "s3"])
def ns_server(request: pytest.FixtureRequest, pg_base: str, template_db: str,
              s3_server: S3Server) -> Iterator[RatServer]:
    """A running RAT per storage backend with the namespaces feature on."""
    server = start_server(pg_base, template_db, request.param, s3_server,
                          {"RAT_PLUGINS": "rat-namespaces"})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def local_server(pg_base: str, template_db: str) -> Iterator[RatServer]:
    server = start_server(pg_base, template_db, "local", None)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdp]:
    """A fake OIDC identity provider on a free port (discovery, authorize, token, JWKS)."""
    from tests.e2e.oidc_support import FakeIdp as Provider

    server = Provider()
    yield server
    server.close()


@pytest.fixture
def api(local_server: RatServer) -> Iterator[httpx.Client]:
    with local_server.client() as client:
        yield client


def unique(prefix: str = "p") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def wait_run(client: httpx.Client, run_id: str, timeout: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] in ("success", "failed", "cancelled"):
            return dict(run)
        time.sleep(0.1)
    raise TimeoutError(f"run {run_id} did not finish: {run}")
