"""The embedded state database asks for a password on its socket too (scram-sha-256)."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from rat.db.embedded import DATABASE, EmbeddedPostgres


@pytest.fixture(scope="module")
def cluster() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(Path(tempfile.mkdtemp(prefix="ratpg-sec-", dir="/tmp")) / "pg")
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def test_socket_without_password_is_refused(cluster: EmbeddedPostgres) -> None:
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://postgres@/{DATABASE}?host={cluster.socket_dir}")
    conn = await asyncpg.connect(cluster.dsn)
    try:
        assert await conn.fetchval("SELECT current_user") == "postgres"
    finally:
        await conn.close()
    assert oct(cluster.password_file.stat().st_mode)[-3:] == "600"


async def test_a_trusting_cluster_is_switched_to_passwords(cluster: EmbeddedPostgres) -> None:
    hba = cluster.pgdata / "pg_hba.conf"
    hba.write_text(hba.read_text().replace("scram-sha-256", "trust"))
    cluster.stop()
    cluster.start()
    assert "trust" not in "".join(line.split("#")[0] for line in hba.read_text().splitlines())
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(f"postgresql://postgres@/{DATABASE}?host={cluster.socket_dir}")
