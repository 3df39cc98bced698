"""Fault-injection fixtures: a Postgres of the module's own that tests may stop and restart."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from rat.config import MIGRATIONS_DIR
from rat.db.embedded import EmbeddedPostgres
from rat.db.migrate import apply_migrations
from tests.conftest import RatServer, clone_database, dsn_for

TEMPLATE = "rat_fault_tpl"


class FaultPostgres:
    """An embedded Postgres only this module uses, so an outage disturbs no other test."""

    def __init__(self, root: Path) -> None:
        self.server = EmbeddedPostgres(root / "pg")
        self.base = self.server.start()

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()

    def database(self) -> str:
        """A fresh migrated database (cloned from the module's template)."""
        return asyncio.run(clone_database(self.base, TEMPLATE))


async def _template(base: str) -> None:
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f"CREATE DATABASE {TEMPLATE}")
    finally:
        await conn.close()
    await apply_migrations(dsn_for(base, TEMPLATE), MIGRATIONS_DIR)


@pytest.fixture(scope="module")
def fault_pg() -> Iterator[FaultPostgres]:
    pg = FaultPostgres(Path(tempfile.mkdtemp(prefix="ratfault-", dir="/tmp")))
    asyncio.run(_template(pg.base))
    try:
        yield pg
    finally:
        pg.stop()


def replica(dsn: str, data_dir: Path, name: str, **env: str) -> RatServer:
    """A `rat serve` on the shared database and data dir, logging to `<name>.log`."""
    server = RatServer(dsn, data_dir, env)
    server.log_path = data_dir / f"{name}.log"
    return server
