"""Two overwrites of the same partition staged from one base: one wins, the other fails cleanly.

Catalog layer (`IcebergTables`, Postgres SQL catalog, local warehouse), the calls a run and the
dispatcher make: prepare_stage, commit_stage (remove the partition's file, add the new one),
publish. The loser gets ConcurrentChange and nothing of it lands; in particular it is never
fast-forwarded over the winner (a lost update), whichever order the steps interleave in.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from rat.core.specs import StageState
from rat.engine.catalog import ConcurrentChange, IcebergTables
from tests.faults.catalog_support import commit, local_tables, main_history, rows, stage, write_file

pytestmark = pytest.mark.timeout(120)
IDENT = "default.silver.parts"
PARTITION = [{"column": "p", "transform": "identity"}]
SEED = [(1, 0, 1), (1, 0, 2), (2, 0, 1)]


def _seed(tables: IcebergTables) -> tuple[int, str]:
    """Partitions 1 and 2, one file each; returns main's snapshot and partition 1's file."""
    run_id = str(uuid.uuid4())
    staged = stage(tables, IDENT, run_id, PARTITION)
    one = write_file(tables, IDENT, [r for r in SEED if r[0] == 1])
    two = write_file(tables, IDENT, [r for r in SEED if r[0] == 2])
    staged = commit(tables, staged, run_id, [one, two])
    return tables.publish(IDENT, staged.branch, staged.base_snapshot_id), one


class Overwrite:
    """One run overwriting partition 1 with its own rows (writer id `w`)."""

    def __init__(self, tables: IcebergTables, w: int, old_file: str) -> None:
        self.tables = tables
        self.run_id = str(uuid.uuid4())
        self.rows = [(1, w, 7), (1, w, 8)]
        self.old_file = old_file
        self.staged: StageState | None = None

    def prepare(self) -> None:
        self.staged = stage(self.tables, IDENT, self.run_id, PARTITION)

    def commit(self) -> None:
        assert self.staged is not None
        path = write_file(self.tables, IDENT, self.rows)
        self.staged = commit(self.tables, self.staged, self.run_id, [path], [self.old_file])

    def publish(self) -> Any:
        """The new snapshot id, or the exception publish raised (the run then discards)."""
        assert self.staged is not None
        try:
            return self.tables.publish(IDENT, self.staged.branch, self.staged.base_snapshot_id)
        except Exception as exc:
            self.tables.discard(IDENT, self.staged.branch)
            return exc


def _expect_one_winner(tables: IcebergTables, base: int, winner: Overwrite, won: Any,
                       loser: Overwrite, lost: Any) -> None:
    assert isinstance(won, int), won
    assert isinstance(lost, ConcurrentChange), lost
    history = main_history(tables, IDENT)
    assert [s.snapshot_id for s in history[:2]] == [won, base]
    assert history[0].summary.get("rat.run_id") == winner.run_id
    assert all(s.summary.get("rat.run_id") != loser.run_id for s in history)
    assert rows(tables, IDENT) == sorted([*winner.rows, *(r for r in SEED if r[0] == 2)])
    table = tables.load(IDENT)
    assert table is not None
    assert set(table.metadata.refs) == {"main"}


def test_racing_publishes_one_wins(db_dsn: str, tmp_path: Path) -> None:
    tables = local_tables(db_dsn, tmp_path)
    base, old = _seed(tables)
    runs = [Overwrite(tables, w, old) for w in (1, 2)]
    for r in runs:
        r.prepare()
        r.commit()
    gate = threading.Barrier(2)

    def publish(r: Overwrite) -> Any:
        gate.wait()
        return r.publish()

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(publish, runs))
    first_won = isinstance(outcomes[0], int)
    winner, loser = (runs[0], runs[1]) if first_won else (runs[1], runs[0])
    won, lost = (outcomes[0], outcomes[1]) if first_won else (outcomes[1], outcomes[0])
    _expect_one_winner(tables, base, winner, won, loser, lost)


def test_stage_committed_after_the_other_published_is_refused(db_dsn: str,
                                                               tmp_path: Path) -> None:
    """Main moves between the loser's prepare and its commit: publishing it would drop the
    winner's snapshot from main's history (and bring back nothing of the winner's rows)."""
    tables = local_tables(db_dsn, tmp_path)
    base, old = _seed(tables)
    first, second = Overwrite(tables, 1, old), Overwrite(tables, 2, old)
    first.prepare()
    second.prepare()
    first.commit()
    won = first.publish()
    second.commit()
    assert second.staged is not None
    assert second.staged.base_snapshot_id == base  # the fork point, not main's head
    lost = second.publish()
    _expect_one_winner(tables, base, first, won, second, lost)
