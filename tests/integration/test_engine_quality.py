"""Quality tests inside a run: they read the staged snapshot and gate publishing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.wap_support import Engine, outcome

IDENT = "default.silver.orders"
ROWS = "SELECT * FROM (VALUES (1, 'open', 10), (2, 'shipped', -5), (3, 'lost', 0)) t(id, status, amount)"


@pytest.fixture
def engine(db_dsn: str, tmp_path: Path) -> Engine:
    return Engine(db_dsn, tmp_path)


def test_error_test_blocks_publish_and_reports_samples(engine: Engine) -> None:
    first, _ = engine.run({"pipeline.sql": "SELECT 1 AS id, 'open' AS status, 5 AS amount"})
    assert first.ok, first.error
    before = engine.snapshot(IDENT)
    files = {"pipeline.sql": ROWS,
             "tests/quality/amount_positive.sql":
                 "-- @severity: error\n-- @description: amounts must be positive\n"
                 "-- @tags: Money, checks\n-- @remediation: fix the source\n"
                 "SELECT id, amount FROM {{ this }} WHERE amount <= 0"}
    result, host = engine.run(files)
    test = outcome(result, "amount_positive")
    assert test["status"] == "fail"
    assert test["row_count"] == 2
    assert sorted(r["id"] for r in test["sample_rows"]) == [2, 3]
    assert test["tags"] == ["money", "checks"]
    assert test["remediation"] == "fix the source"
    assert test["message"] == "amounts must be positive"
    assert "iceberg_scan(" in test["compiled_sql"]
    assert test["test_file"] == "tests/quality/amount_positive.sql"
    assert engine.snapshot(IDENT) == before
    assert engine.rows(IDENT) == [(1, "open", 5)]
    assert any("amount_positive" in m for level, m in host.logs if level == "error")


def test_this_and_ref_to_itself_read_the_staged_rows(engine: Engine) -> None:
    engine.run({"pipeline.sql": "SELECT 1 AS id"})
    files = {"pipeline.sql": "SELECT range AS id FROM range(10, 13)",
             "tests/quality/staged_this.sql": "SELECT * FROM {{ this }} WHERE id < 10",
             "tests/quality/staged_ref.sql":
                 "SELECT count(*) AS n FROM {{ ref('silver.orders') }} HAVING count(*) <> 3"}
    result, _ = engine.run(files)
    assert result.ok, result.error
    assert [q.status for q in result.quality] == ["pass", "pass"]
    assert engine.rows(IDENT) == [(10,), (11,), (12,)]


def test_warn_failure_publishes(engine: Engine) -> None:
    files = {"pipeline.sql": ROWS,
             "tests/quality/status_known.sql":
                 "-- @severity: warning\nSELECT * FROM {{ this }} WHERE status = 'lost'"}
    result, _ = engine.run(files)
    test = outcome(result, "status_known")
    assert (test["status"], test["severity"], test["row_count"]) == ("fail", "warn", 1)
    assert result.ok
    assert len(engine.rows(IDENT)) == 3


def test_column_tests_from_config(engine: Engine) -> None:
    config = """
columns:
  - name: id
    tests: [not_null, unique]
  - name: status
    tests:
      - accepted_values: {values: [open, shipped], severity: warn}
  - name: amount
    tests: [positive, non_negative]
"""
    sql = ("SELECT * FROM (VALUES (1, 'open', 10), (1, 'lost', -1), (NULL, NULL, 0)) "
           "t(id, status, amount)")
    result, _ = engine.run({"pipeline.sql": sql, "config.yaml": config})
    got = {q.test_name: (q.status, q.severity, q.row_count) for q in result.quality}
    assert got == {
        "id__not_null": ("fail", "error", 1),
        "id__unique": ("fail", "error", 1),
        "status__accepted_values": ("fail", "warn", 1),
        "amount__positive": ("fail", "error", 2),
        "amount__non_negative": ("fail", "error", 1),
    }
    assert [q.kind for q in result.quality] == ["column"] * 5
    assert engine.snapshot(IDENT) is None or engine.tables.state(IDENT).published is False


def test_relationships_reads_published_target(engine: Engine) -> None:
    assert engine.run({"pipeline.sql": "SELECT * FROM (VALUES (1), (2)) t(id)"},
                      name="customers")[0].ok
    config = ("columns:\n  - name: customer_id\n    tests:\n"
              "      - relationships: {to: silver.customers, field: id}\n")
    sql = "SELECT * FROM (VALUES (10, 1), (11, 3), (12, NULL)) t(order_id, customer_id)"
    result, _ = engine.run({"pipeline.sql": sql, "config.yaml": config})
    test = outcome(result, "customer_id__relationships")
    assert (test["status"], test["row_count"]) == ("fail", 1)
    assert test["sample_rows"] == [{"order_id": 11, "customer_id": 3}]


def test_freshness_with_field(engine: Engine) -> None:
    config = "freshness: {warn_after: {hours: 1}, error_after: {days: 1}, field: updated_at}\n"
    stale = "SELECT 1 AS id, TIMESTAMPTZ '2020-01-01 00:00:00+00' AS updated_at"
    result, _ = engine.run({"pipeline.sql": stale, "config.yaml": config})
    test = outcome(result, "freshness")
    assert (test["kind"], test["status"], test["severity"]) == ("freshness", "fail", "error")
    assert not result.ok or engine.tables.state(IDENT).published is False
    warn = "SELECT 1 AS id, now() - INTERVAL 2 HOUR AS updated_at"
    result, _ = engine.run({"pipeline.sql": warn, "config.yaml": config})
    assert (outcome(result, "freshness")["status"], outcome(result, "freshness")["severity"]) == \
        ("fail", "warn")
    fresh = "SELECT 1 AS id, now() AS updated_at"
    result, _ = engine.run({"pipeline.sql": fresh, "config.yaml": config})
    assert outcome(result, "freshness")["status"] == "pass"


def test_test_errors_and_timeouts_do_not_stop_the_suite(engine: Engine) -> None:
    files = {"pipeline.sql": "SELECT 1 AS id",
             "tests/quality/a_broken.sql": "SELECT * FROM {{ this }} WHERE no_such_column = 1",
             "tests/quality/b_slow.sql":
                 "SELECT a.range FROM range(200000000) a, range(100000) b "
                 "WHERE a.range + b.range = -1",
             "tests/quality/c_jinja.sql": "SELECT * FROM {{ this }} {% if %}",
             "tests/quality/d_ok.sql": "SELECT * FROM {{ this }} WHERE id <> 1"}
    result, _ = engine.run(files, timeout=1)
    got = {q.test_name: (q.status, q.message) for q in result.quality}
    assert got["a_broken"][0] == "error"
    assert "no_such_column" in got["a_broken"][1]
    assert got["b_slow"] == ("error", "timeout after 1 s")
    assert got["c_jinja"][0] == "error"
    assert "line 1" in got["c_jinja"][1]
    assert got["d_ok"] == ("pass", "")
    assert outcome(result, "b_slow")["duration_ms"] < 5000


def test_long_cells_are_truncated(engine: Engine) -> None:
    files = {"pipeline.sql": "SELECT repeat('x', 500) AS blob",
             "tests/quality/long.sql": "-- @severity: warn\nSELECT * FROM {{ this }}"}
    result, _ = engine.run(files)
    sample = outcome(result, "long")["sample_rows"][0]["blob"]
    assert sample == "x" * 200 + "…"


def test_scd2_invariants_find_violations(engine: Engine) -> None:
    from rat.engine import duck, quality
    from rat.engine.config import build_config
    from rat.engine.render import RenderContext

    config = build_config("SELECT 1", "merge_strategy: scd2\nunique_key: id\n").config
    con = duck.connect(memory_limit="256MB", threads=1)
    con.execute("""CREATE TEMP TABLE t AS SELECT * FROM (VALUES
        (1, 'a', TIMESTAMPTZ '2024-01-01', NULL::TIMESTAMPTZ),
        (1, 'b', TIMESTAMPTZ '2024-02-01', NULL),
        (2, 'c', TIMESTAMPTZ '2024-01-01', TIMESTAMPTZ '2024-03-01'),
        (2, 'd', TIMESTAMPTZ '2024-02-01', NULL),
        (3, 'e', TIMESTAMPTZ '2024-05-01', TIMESTAMPTZ '2024-04-01'),
        (4, 'f', TIMESTAMPTZ '2024-01-01', TIMESTAMPTZ '2024-02-01'),
        (4, 'g', TIMESTAMPTZ '2024-02-01', NULL)) v(id, val, valid_from, valid_to)""")
    ctx = RenderContext(namespace="default", layer="silver", name="dim", merge_strategy="scd2",
                        run_started_at="2024-06-01T00:00:00+00:00", ref=lambda n: n,
                        landing_zone=lambda z: z, this=lambda: "t")
    tests = quality.invariant_tests(config)
    got = {o.test_name: (o.status, o.row_count)
           for o in quality.TestRunner(con, ctx, timeout_seconds=10).run_all(tests)}
    assert got == {"scd2_one_open_row": ("fail", 1), "scd2_no_overlap": ("fail", 2),
                   "scd2_valid_range": ("fail", 1)}
    con.execute("CREATE TEMP TABLE touched AS SELECT 4 AS id")
    scoped = quality.invariant_tests(config, touched="touched")
    assert all(o.status == "pass"
               for o in quality.TestRunner(con, ctx, timeout_seconds=10).run_all(scoped))
