"""Apply numbered SQL migrations once, in order, under a Postgres advisory lock."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import asyncpg

log = logging.getLogger(__name__)
_LOCK_KEY = 0x7261745F6D6967  # "rat_mig"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


class MigrationError(Exception):
    """An applied migration changed on disk, or a file is misnamed."""


def migration_files(directory: Path) -> list[tuple[int, Path]]:
    files = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise MigrationError(f"migration file {path.name} must be named NNNN_description.sql")
        files.append((int(m.group(1)), path))
    return files


async def apply_migrations(dsn: str, directory: Path) -> list[str]:
    """Apply pending migrations; return the names applied. Safe to call from several processes."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
        try:
            return await _apply_locked(conn, directory)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    finally:
        await conn.close()


async def _apply_locked(conn: asyncpg.Connection, directory: Path) -> list[str]:
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY,"
        " name text NOT NULL, checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())")
    applied = {r["version"]: r for r in await conn.fetch(
        "SELECT version, name, checksum FROM schema_migrations")}
    done: list[str] = []
    for version, path in migration_files(directory):
        text = path.read_text(encoding="utf-8")
        checksum = hashlib.sha256(text.encode()).hexdigest()
        if version in applied:
            if applied[version]["checksum"] != checksum:
                raise MigrationError(f"migration {path.name} changed after it was applied")
            continue
        async with conn.transaction():
            await conn.execute(text)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                version, path.name, checksum)
        log.info("applied migration %s", path.name)
        done.append(path.name)
    return done
