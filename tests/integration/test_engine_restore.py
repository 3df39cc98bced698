"""Catalog operations behind versions: rat_v{N} tags and metadata-only data restore."""

from __future__ import annotations

from pathlib import Path

import pytest

from rat.engine.catalog import SnapshotGone
from tests.integration.wap_support import Engine

IDENT = "default.silver.orders"


@pytest.fixture
def engine(db_dsn: str, tmp_path: Path) -> Engine:
    return Engine(db_dsn, tmp_path)


def test_restore_brings_back_rows_and_schema(engine: Engine) -> None:
    assert engine.run({"pipeline.sql": "SELECT * FROM (VALUES (1), (2), (3)) t(id)"})[0].ok
    v1 = engine.snapshot(IDENT)
    assert v1 is not None
    assert engine.run({"pipeline.sql": "SELECT 9 AS id, 'new' AS extra"})[0].ok
    assert engine.rows(IDENT) == [(9, "new")]
    restored = engine.tables.restore(IDENT, v1, {"rat.operation": "rollback"})
    assert restored not in (v1, None)
    assert engine.snapshot(IDENT) == restored
    assert engine.rows(IDENT) == [(1,), (2,), (3,)]
    history = engine.tables.history(IDENT, limit=1)
    assert history[0].summary["rat.operation"] == "rollback"
    assert engine.tables.state(IDENT).published
    # a run after the restore builds on the restored table
    assert engine.run({"pipeline.sql": "SELECT 4 AS id",
                       "config.yaml": "merge_strategy: append_only\n"})[0].ok
    assert engine.rows(IDENT) == [(1,), (2,), (3,), (4,)]


def test_tags_move_and_are_removed(engine: Engine) -> None:
    engine.run({"pipeline.sql": "SELECT 1 AS id"})
    first = engine.snapshot(IDENT)
    engine.tables.tag(IDENT, "rat_v1", first)
    engine.run({"pipeline.sql": "SELECT 2 AS id"})
    second = engine.snapshot(IDENT)
    engine.tables.tag(IDENT, "rat_v1", second)
    engine.tables.tag(IDENT, "rat_v2", second)
    refs = engine.tables._require(IDENT).metadata.refs
    assert (refs["rat_v1"].snapshot_id, refs["rat_v2"].snapshot_id) == (second, second)
    assert engine.tables.remove_tags(IDENT, ["rat_v1", "rat_v9"]) == 1
    assert "rat_v1" not in engine.tables._require(IDENT).metadata.refs


def test_restore_of_unknown_snapshot(engine: Engine) -> None:
    engine.run({"pipeline.sql": "SELECT 1 AS id"})
    with pytest.raises(SnapshotGone):
        engine.tables.restore(IDENT, 12345, {})
