"""Migrations and named queries against a real Postgres."""

from __future__ import annotations

import asyncio
from importlib import resources
from pathlib import Path

import asyncpg
import pytest

from rat.config import MIGRATIONS_DIR
from rat.db.migrate import MigrationError, apply_migrations
from rat.db.queries import load_queries
from tests.conftest import clone_database, drop_database, dsn_for

SLICES = sorted(p.parent.name for p in Path(str(resources.files("rat"))).glob("*/queries.sql"))


async def test_migrations_are_idempotent_and_concurrent_safe(pg_base: str) -> None:
    dsn = dsn_for(pg_base, "postgres")
    conn = await asyncpg.connect(dsn)
    await conn.execute("DROP DATABASE IF EXISTS mig_race")
    await conn.execute("CREATE DATABASE mig_race")
    await conn.close()
    target = dsn_for(pg_base, "mig_race")
    try:
        results = await asyncio.gather(*(apply_migrations(target, MIGRATIONS_DIR) for _ in range(4)))
        applied = sorted(name for result in results for name in result)
        assert applied == sorted(p.name for p in MIGRATIONS_DIR.glob("*.sql"))
        assert await apply_migrations(target, MIGRATIONS_DIR) == []
        conn = await asyncpg.connect(target)
        assert await conn.fetchval("SELECT name FROM namespaces") == "default"
        await conn.close()
    finally:
        await drop_database(pg_base, target)


async def test_changed_migration_is_refused(pg_base: str, template_db: str,
                                            tmp_path: Path) -> None:
    dsn = await clone_database(pg_base, template_db)
    try:
        for src in MIGRATIONS_DIR.glob("*.sql"):
            (tmp_path / src.name).write_text(src.read_text() + "\n-- edited\n")
        with pytest.raises(MigrationError, match="changed"):
            await apply_migrations(dsn, tmp_path)
    finally:
        await drop_database(pg_base, dsn)


@pytest.mark.parametrize("package", SLICES)
async def test_every_named_query_prepares(db_dsn: str, package: str) -> None:
    conn = await asyncpg.connect(db_dsn)
    try:
        for query in load_queries(f"rat.{package}").values():
            await conn.prepare(query.sql)
    finally:
        await conn.close()


@pytest.mark.parametrize("package", SLICES)
def test_every_named_query_is_used(package: str) -> None:
    root = Path(str(resources.files("rat")))
    code = "\n".join(p.read_text() for p in root.rglob("*.py"))
    unused = [name for name in load_queries(f"rat.{package}") if f'"{name}"' not in code]
    assert unused == []
