"""SQL that ends in comments, semicolons and whitespace runs with every merge strategy (issue 16).

The engine wraps the user's statement (`DESCRIBE (...)`, `... FROM (...)`); a trailing `--`
comment must not swallow the closing parenthesis, and a `;` after which a comment follows must
still be dropped. Quality test files get the same treatment.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from rat.engine.strategies import STRATEGIES
from tests.integration.wap_support import Engine, outcome

CONFIGS = {
    "full_refresh": "merge_strategy: full_refresh\n",
    "incremental": "merge_strategy: incremental\nunique_key: [id]\n",
    "append_only": "merge_strategy: append_only\n",
    "delete_insert": "merge_strategy: delete_insert\nunique_key: [id]\n",
    "scd2": "merge_strategy: scd2\nunique_key: [id]\n",
    "snapshot": "merge_strategy: snapshot\npartition_column: id\n",
}
ENDINGS = {
    "line_comment": " -- trailing comment",
    "commented_where": "\n-- WHERE id > 1\n",
    "semicolon_then_comment": ";\n-- after semicolon",
    "mixed": " /* block */ ; -- one\n ;\t/* two */\n\n",
}


@pytest.fixture
def engine(db_dsn: str, tmp_path: Path) -> Engine:
    return Engine(db_dsn, tmp_path)


def test_configs_cover_every_builtin_strategy() -> None:
    assert set(CONFIGS) <= set(STRATEGIES)
    assert {"full_refresh", "incremental", "append_only", "delete_insert", "scd2",
            "snapshot"} == set(CONFIGS)


@pytest.mark.parametrize("ending", list(ENDINGS.values()), ids=list(ENDINGS))
@pytest.mark.parametrize("strategy", list(CONFIGS))
def test_run_succeeds_whatever_follows_the_statement(engine: Engine, strategy: str,
                                                     ending: str) -> None:
    files = {"pipeline.sql": "SELECT 1 AS id, 'a' AS v" + ending,
             "config.yaml": CONFIGS[strategy]}
    result, _host = engine.run(files, name=f"end_{strategy}")
    assert result.ok, result.error
    assert result.rows_written == 1
    assert [r[:2] for r in engine.rows(f"default.silver.end_{strategy}")] == [(1, "a")]


@pytest.mark.parametrize("ending", list(ENDINGS.values()), ids=list(ENDINGS))
def test_quality_test_sql_may_end_in_comments(engine: Engine, ending: str) -> None:
    files = {"pipeline.sql": "SELECT 1 AS id",
             "tests/quality/no_negatives.sql": "SELECT * FROM {{ this }} WHERE id < 0" + ending,
             "tests/quality/no_ones.sql": "-- @severity: warn\nSELECT * FROM {{ this }} "
                                          "WHERE id = 1" + ending}
    result, _host = engine.run(files)
    assert result.ok, result.error
    assert outcome(result, "no_negatives")["status"] == "pass"
    ones = outcome(result, "no_ones")
    assert (ones["status"], ones["row_count"]) == ("fail", 1), ones["message"]
