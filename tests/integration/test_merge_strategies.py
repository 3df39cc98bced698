"""The six merge strategies against §5's worked examples, on local disk and on S3.

Every run goes through `execute_run` with the real catalog; tables are read back with pyiceberg.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.engine_harness import Engine, storage_for, write_meta


@pytest.fixture(params=["local", "s3"])
def engine(request: pytest.FixtureRequest, db_dsn: str, tmp_path: Path) -> Engine:
    s3 = request.getfixturevalue("s3_server") if request.param == "s3" else None
    return Engine(db_dsn, storage_for(request.param, tmp_path, s3), tmp_path / "scratch")


def values(rows: str, cols: str = "id, v") -> str:
    """A SELECT of literal rows, in the given order."""
    return f"SELECT * FROM (VALUES {rows}) AS r({cols})"


INCREMENTAL = "merge_strategy: incremental\nunique_key: [id]\n"
DELETE_INSERT = "merge_strategy: delete_insert\nunique_key: [id]\n"


# §5.2 full_refresh


def test_full_refresh_replaces_and_empties(engine: Engine) -> None:
    engine.ok(values("(1, 'a'), (2, 'b')"))
    result = engine.ok(values("(2, 'x'), (3, 'y')"))
    assert engine.rows() == [(2, "x"), (3, "y")]
    assert result.rows_written == 2
    assert write_meta(result)["rows_deleted"] == 2
    result = engine.ok("SELECT 1 AS id, 'z' AS w WHERE false")
    assert engine.rows() == []
    assert [f.name for f in engine.table().schema().fields] == ["id", "w"]
    assert engine.files() == set()
    assert result.rows_written == 0


# §5.3 incremental


def test_incremental_worked_example(engine: Engine) -> None:
    engine.ok(values("(1, 'a'), (2, 'b')"), INCREMENTAL)
    r = values("(2, 'x'), (3, 'y'), (3, 'z')")
    result = engine.ok(r, INCREMENTAL)
    assert engine.rows() == [(1, "a"), (2, "x"), (3, "z")]
    assert result.rows_written == 2
    assert write_meta(result)["rows_deleted"] == 1
    engine.ok(r, INCREMENTAL)
    assert engine.rows() == [(1, "a"), (2, "x"), (3, "z")]


def test_incremental_null_key_is_a_key(engine: Engine) -> None:
    engine.ok(values("(1, 'a'), (NULL, 'b')"), INCREMENTAL)
    result = engine.ok(values("(NULL::INTEGER, 'c')"), INCREMENTAL)
    assert engine.rows() == [(1, "a"), (None, "c")]
    assert write_meta(result)["rows_deleted"] == 1


def test_incremental_composite_key_with_null_component(engine: Engine) -> None:
    cfg = "merge_strategy: incremental\nunique_key: [id, region]\n"
    cols = "id, region, v"
    engine.ok(values("(1, 'eu', 'a'), (1, 'us', 'b'), (2, NULL, 'c')", cols), cfg)
    result = engine.ok(values("(1, 'us', 'B'), (2, NULL, 'C'), (2, 'eu', 'D')", cols), cfg)
    assert engine.rows() == [(1, "eu", "a"), (1, "us", "B"), (2, "eu", "D"), (2, None, "C")]
    assert result.rows_written == 3
    assert write_meta(result)["rows_deleted"] == 2


def test_zero_row_batch_is_a_noop_except_full_refresh(engine: Engine) -> None:
    engine.ok(values("(1, 'a')"), INCREMENTAL)
    before = engine.table().current_snapshot().snapshot_id
    result = engine.ok("SELECT 5 AS id, 'x' AS v WHERE false", INCREMENTAL)
    assert result.rows_written == 0
    assert result.stage is None
    assert engine.table().current_snapshot().snapshot_id == before
    assert engine.rows() == [(1, "a")]


# §5.4 append_only


def test_append_only_worked_example(engine: Engine) -> None:
    cfg = "merge_strategy: append_only\n"
    engine.ok(values("(1, 'a')"), cfg)
    result = engine.ok(values("(1, 'a'), (2, 'b')"), cfg)
    assert engine.rows() == [(1, "a"), (1, "a"), (2, "b")]
    assert result.rows_written == 2
    assert write_meta(result)["files_removed"] == 0


# §5.5 delete_insert


def test_delete_insert_worked_example(engine: Engine) -> None:
    engine.ok(values("(1, 'a'), (2, 'b')"), DELETE_INSERT)
    result = engine.ok(values("(2, 'x'), (2, 'y'), (3, 'z')"), DELETE_INSERT)
    assert engine.rows() == [(1, "a"), (2, "x"), (2, "y"), (3, "z")]
    assert result.rows_written == 3
    assert write_meta(result)["rows_deleted"] == 1


# §5.6 scd2

T_1 = "2026-01-01T00:00:00.000000+00:00"
T0 = "2026-01-02T00:00:00.000000+00:00"
T1 = "2026-01-03T00:00:00.000000+00:00"
SCD2 = "merge_strategy: scd2\nunique_key: [id]\n"


def _ts(text: str) -> object:
    from datetime import datetime

    return datetime.fromisoformat(text)


def _scd2_base(engine: Engine, cfg: str) -> None:
    """T = (1,a,t0,∅) (2,b,t0,∅) (2,old,t-1,t0), built by two runs."""
    engine.ok(values("(2, 'old')"), cfg, started_at=T_1)
    engine.ok(values("(1, 'a'), (2, 'b')"), cfg, started_at=T0)
    assert engine.rows() == [(1, "a", _ts(T0), None), (2, "b", _ts(T0), None),
                             (2, "old", _ts(T_1), _ts(T0))]


def test_scd2_worked_example(engine: Engine) -> None:
    _scd2_base(engine, SCD2)
    result = engine.ok(values("(1, 'a'), (2, 'B'), (3, 'c')"), SCD2, started_at=T1)
    assert engine.rows() == [
        (1, "a", _ts(T0), None), (2, "B", _ts(T1), None), (2, "b", _ts(T0), _ts(T1)),
        (2, "old", _ts(T_1), _ts(T0)), (3, "c", _ts(T1), None)]
    assert result.rows_written == 2
    assert write_meta(result)["rows_closed"] == 1
    schema = engine.table().schema()
    assert [str(f.field_type) for f in schema.fields][-2:] == ["timestamptz", "timestamptz"]


def test_scd2_invalidate_closes_absent_keys(engine: Engine) -> None:
    cfg = SCD2 + "scd_hard_deletes: invalidate\n"
    _scd2_base(engine, cfg)
    result = engine.ok(values("(1, 'a'), (3, 'c')"), cfg, started_at=T1)
    assert engine.rows() == [
        (1, "a", _ts(T0), None), (2, "b", _ts(T0), _ts(T1)), (2, "old", _ts(T_1), _ts(T0)),
        (3, "c", _ts(T1), None)]
    assert result.rows_written == 1
    before = engine.files()
    engine.host.logs.clear()
    empty = engine.ok("SELECT 1 AS id, 'x' AS v WHERE false", cfg)
    warning = ("scd2: the result is empty, so invalidating absent keys was skipped "
               "(no open row was closed)")
    assert empty.warnings == [warning]
    assert ("warn", warning) in engine.host.logs  # §5.6: "skipped with a warning"
    assert engine.files() == before


def test_scd2_null_values_compare_equal(engine: Engine) -> None:
    engine.ok(values("(4, NULL::VARCHAR)"), SCD2, started_at=T0)
    before = engine.files()
    result = engine.ok(values("(4, NULL::VARCHAR)"), SCD2, started_at=T1)
    assert engine.rows() == [(4, None, _ts(T0), None)]
    assert result.rows_written == 0
    assert engine.files() == before


def test_scd2_reappearing_closed_key_and_custom_columns(engine: Engine) -> None:
    cfg = ("merge_strategy: scd2\nunique_key: id\nscd_hard_deletes: invalidate\n"
           "scd_valid_from: since\nscd_valid_to: until\n")
    engine.ok(values("(1, 'a')"), cfg, started_at=T_1)
    engine.ok(values("(2, 'b')"), cfg, started_at=T0)
    engine.ok(values("(1, 'a'), (2, 'b')"), cfg, started_at=T1)
    assert engine.rows(columns="id, v, since, until") == [
        (1, "a", _ts(T_1), _ts(T0)), (1, "a", _ts(T1), None), (2, "b", _ts(T0), None)]


def test_scd2_refuses_bad_batches(engine: Engine) -> None:
    engine.ok(values("(1, 'a')"), SCD2, started_at=T1)
    backwards = engine.run(values("(1, 'changed')"), SCD2, started_at=T0)
    assert not backwards.ok
    assert "clock went backwards" in str(backwards.error)
    null_key = engine.run(values("(NULL::INTEGER, 'x')"), SCD2)
    assert not null_key.ok
    assert "unique_key column 'id' has 1 NULL values" in str(null_key.error)
    clash = engine.run("SELECT 1 AS id, 'x' AS v, now() AS valid_from", SCD2)
    assert not clash.ok
    assert "'valid_from' is a column of the result" in str(clash.error)
    assert engine.rows() == [(1, "a", _ts(T1), None)]


# §5.7 snapshot

SNAPSHOT = "merge_strategy: snapshot\npartition_column: d\n"


@pytest.mark.parametrize("partitioned", [False, True])
def test_snapshot_worked_example(engine: Engine, partitioned: bool) -> None:
    cfg = SNAPSHOT + ("partition_by: [{column: d}]\n" if partitioned else "")
    engine.ok(values("('d1', 1), ('d1', 2), ('d2', 3)", "d, v"), cfg)
    d1_files = {f.file_path for f in engine.data_files() if f.partition[0] == "d1"} \
        if partitioned else set()
    result = engine.ok(values("('d2', 4), ('d3', 5)", "d, v"), cfg)
    assert engine.rows() == [("d1", 1), ("d1", 2), ("d2", 4), ("d3", 5)]
    assert result.rows_written == 2
    meta = write_meta(result)
    assert meta["rows_deleted"] == 1
    if partitioned:
        # Identity-partitioned replacement drops the d2 file without reading it.
        assert meta["files_rewritten"] == 0
        assert meta["files_removed"] == 1
        assert d1_files <= engine.files()
        assert sorted(f.partition[0] for f in engine.data_files()) == ["d1", "d2", "d3"]


def test_snapshot_null_partition_value(engine: Engine) -> None:
    cfg = SNAPSHOT + "partition_by: [{column: d}]\n"
    engine.ok(values("(NULL::VARCHAR, 1), ('d1', 2)", "d, v"), cfg)
    engine.ok(values("(NULL::VARCHAR, 3)", "d, v"), cfg)
    assert engine.rows() == [("d1", 2), (None, 3)]


# partition_by transforms (§4.3)


@pytest.mark.parametrize(("transform", "expected"), [
    ("identity", 4), ("hour", 3), ("day", 3), ("month", 2), ("year", 2)])
def test_partition_transforms_write_one_file_per_partition(
        engine: Engine, transform: str, expected: int) -> None:
    cfg = f"merge_strategy: append_only\npartition_by: [{{column: ts, transform: {transform}}}]\n"
    rows = ("(1, TIMESTAMPTZ '2025-12-31 23:30:00+00'), (2, TIMESTAMPTZ '2026-01-01 00:10:00+00'),"
            " (3, TIMESTAMPTZ '2026-01-01 00:50:00+00'), (4, TIMESTAMPTZ '2026-01-02 00:00:00+00')")
    engine.ok(values(rows, "id, ts"), cfg)
    table = engine.table()
    assert [str(f.transform) for f in table.spec().fields] == [transform]
    files = engine.data_files()
    assert len(files) == expected
    assert len({tuple(f.partition) for f in files}) == expected
    assert [r[0] for r in engine.rows(columns="id")] == [(1), (2), (3), (4)]


def test_date_partitions_and_incremental_merge_into_them(engine: Engine) -> None:
    cfg = INCREMENTAL + "partition_by: [{column: d, transform: month}]\n"
    cols = "id, d, v"
    engine.ok(values("(1, DATE '2026-01-05', 'a'), (2, DATE '2026-01-20', 'b'), "
                     "(3, DATE '2026-02-01', 'c')", cols), cfg)
    feb = {f.file_path for f in engine.data_files() if f.record_count == 1}
    result = engine.ok(values("(2, DATE '2026-01-21', 'B'), (4, DATE '2026-03-01', 'd')", cols),
                       cfg)
    assert engine.rows() == [
        (1, _d("2026-01-05"), "a"), (2, _d("2026-01-21"), "B"), (3, _d("2026-02-01"), "c"),
        (4, _d("2026-03-01"), "d")]
    assert feb <= engine.files()
    assert write_meta(result)["files_rewritten"] == 1
    assert sorted(len(set(_months(f))) for f in engine.data_files()) == [1, 1, 1]


def _d(text: str) -> object:
    from datetime import date

    return date.fromisoformat(text)


def _months(data_file: object) -> list[int]:
    return list(data_file.partition)  # type: ignore[attr-defined]


def test_bad_partition_by_fails_clearly(engine: Engine) -> None:
    result = engine.run("SELECT 1 AS id", "partition_by: [{column: nope}]\n")
    assert not result.ok
    assert "partition_by column 'nope' is not a column of the result" in str(result.error)
    result = engine.run("SELECT 'x' AS s", "partition_by: [{column: s, transform: day}]\n")
    assert not result.ok
    assert "transform day cannot apply to column 's' of type VARCHAR" in str(result.error)


# schema changes (§5.1)


def test_incremental_adds_columns_and_widens_safely(engine: Engine) -> None:
    engine.ok("SELECT 1::INTEGER AS id, 1.5::FLOAT AS f, 1.25::DECIMAL(5,2) AS m, 'a' AS v",
              INCREMENTAL)
    engine.ok("SELECT 2::BIGINT AS id, 2.5::DOUBLE AS f, 2.25::DECIMAL(9,2) AS m, 'new' AS extra",
              INCREMENTAL)
    types = {f.name: str(f.field_type) for f in engine.table().schema().fields}
    assert types == {"id": "long", "f": "double", "m": "decimal(9, 2)", "v": "string",
                     "extra": "string"}
    assert engine.rows(columns="id, v, extra") == [(1, "a", None), (2, None, "new")]
    # A narrower type than the table's is written as the table's type.
    engine.ok("SELECT 3::INTEGER AS id, 3.5::FLOAT AS f", INCREMENTAL)
    assert {f.name: str(f.field_type) for f in engine.table().schema().fields}["id"] == "long"
    assert [r[0] for r in engine.rows(columns="id")] == [1, 2, 3]


@pytest.mark.parametrize("strategy", ["incremental", "append_only", "delete_insert", "snapshot"])
def test_incompatible_type_change_fails_and_keeps_table(engine: Engine, strategy: str) -> None:
    cfg = f"merge_strategy: {strategy}\nunique_key: [id]\npartition_column: id\n"
    engine.ok("SELECT 1 AS id, 10 AS n", cfg)
    before = (engine.table().schema(), engine.files())
    result = engine.run("SELECT 1 AS id, 'ten' AS n, 'x' AS added", cfg)
    assert not result.ok
    assert result.error == "column n changed type INTEGER → VARCHAR; use full_refresh"
    assert (engine.table().schema(), engine.files()) == before
    assert engine.rows() == [(1, 10)]
    assert engine.table().refs().keys() == {"main"}


def test_full_refresh_applies_any_schema_change(engine: Engine) -> None:
    engine.ok("SELECT 1 AS id, 10 AS n, 'x' AS gone")
    engine.ok("SELECT 'one' AS id, 1.5 AS n")
    types = {f.name: str(f.field_type) for f in engine.table().schema().fields}
    assert types == {"id": "string", "n": "decimal(2, 1)"}
    assert engine.rows() == [("one", __import__("decimal").Decimal("1.5"))]


def test_failed_write_restores_schema_and_drops_branch(engine: Engine) -> None:
    engine.ok(values("(1, 'a')"), SCD2, started_at=T1)
    schema = engine.table().schema()
    files = engine.files()
    # The new column is staged, then the write fails (clock went backwards): nothing remains.
    result = engine.run("SELECT 1 AS id, 'b' AS v, 2 AS extra", SCD2, started_at=T0)
    assert not result.ok
    assert "clock went backwards" in str(result.error)
    assert engine.table().schema() == schema
    assert engine.table().refs().keys() == {"main"}
    assert engine.files() == files


# bad input


@pytest.mark.parametrize(("config", "error"), [
    ("merge_strategy: upsert\n", "merge_strategy 'upsert' is not one of"),
    ("merge_strategy: incremental\n", "merge_strategy 'incremental' requires unique_key"),
    ("merge_strategy: scd2\n", "merge_strategy 'scd2' requires unique_key"),
    ("merge_strategy: snapshot\n", "merge_strategy 'snapshot' requires partition_column"),
    ("merge_strategy: delete_insert\nunique_key: [nope]\n",
     "unique_key column 'nope' is not a column of the result"),
    ("merge_strategy: snapshot\npartition_column: nope\n",
     "partition_column column 'nope' is not a column of the result"),
])
def test_bad_config_fails_at_run_start(engine: Engine, config: str, error: str) -> None:
    result = engine.run("SELECT 1 AS id", config)
    assert not result.ok
    assert error in str(result.error)
    assert result.stage is None
    assert engine.tables.load("default.silver.t") is None


# cost (§5.1): untouched files stay referenced


def test_merge_rewrites_only_files_holding_touched_keys(engine: Engine) -> None:
    append = "merge_strategy: append_only\n"
    engine.ok("SELECT range AS id, 'a' AS v FROM range(0, 100)", append)
    engine.ok("SELECT range AS id, 'b' AS v FROM range(100, 200)", append)
    # Same key range as the first file, but without keys 50..59: stats admit, reading refutes.
    engine.ok("SELECT range AS id, 'c' AS v FROM range(0, 100) WHERE range NOT BETWEEN 50 AND 59",
              append)
    before = {f.file_path: (f.lower_bounds, f.upper_bounds) for f in engine.data_files()}
    assert len(before) == 3
    result = engine.ok("SELECT 55 AS id, 'X' AS v UNION ALL SELECT 1000, 'new'", INCREMENTAL)
    after = engine.files()
    meta = write_meta(result)
    assert (meta["files_rewritten"], meta["files_removed"], meta["files_added"]) == (1, 1, 1)
    assert meta["rows_deleted"] == 1
    removed = set(before) - after
    assert len(removed) == 1
    assert len(after) == 3
    assert set(before) - removed <= after  # untouched files are still referenced
    rows = engine.rows()
    assert len(rows) == 100 + 100 + 90 + 1
    assert {(55, "X"), (1000, "new")} <= set(rows)
    assert (55, "a") not in rows


def test_watermark_value_filters_incremental_runs(engine: Engine) -> None:
    cfg = INCREMENTAL + "watermark_column: day\n"
    sql = ("SELECT * FROM (VALUES (1, DATE '2026-01-01'), (2, DATE '2026-01-02')) AS r(id, day)"
           "{% if is_incremental() and watermark_value %} WHERE day > '{{ watermark_value }}'"
           "{% endif %}")
    first = engine.ok(sql.replace("(2, DATE '2026-01-02')", "(0, DATE '2025-12-31')"), cfg)
    assert first.rows_written == 2
    second = engine.ok(sql, cfg)
    assert second.rows_written == 1
    third = engine.ok(sql, cfg)
    assert third.rows_written == 0
    assert [r[0] for r in engine.rows()] == [0, 1, 2]


def test_nested_types_survive_a_merge_rewrite(engine: Engine) -> None:
    sql = ("SELECT {id} AS id, {{'a': {id}, 'b': 'x'}} AS s, [{id}, 2] AS l, "
           "MAP {{'k': {id}}} AS m, '{v}' AS v")
    engine.ok(sql.format(id=1, v="a") + " UNION ALL " + sql.format(id=2, v="b"), INCREMENTAL)
    result = engine.ok(sql.format(id=2, v="B"), INCREMENTAL)
    assert write_meta(result)["files_rewritten"] == 1
    assert engine.rows(columns="id, s, l, m, v") == [
        (1, {"a": 1, "b": "x"}, [1, 2], [("k", 1)], "a"),
        (2, {"a": 2, "b": "x"}, [2, 2], [("k", 2)], "B")]


@pytest.mark.parametrize("storage", ["spilled", "temp_table"])
def test_last_row_wins_across_batch_files(db_dsn: str, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, storage: str) -> None:
    """R spread over several scratch files (or a temp table without a scratch dir) keeps order."""
    from rat.engine import batch

    monkeypatch.setattr(batch, "_SPILL_FILE_BYTES", 1)  # one scratch file per row group
    scratch = tmp_path / "scratch" if storage == "spilled" else None
    engine = Engine(db_dsn, storage_for("local", tmp_path, None), scratch)
    sql = "SELECT range % 1000 AS id, range AS v FROM range(400000) ORDER BY range"
    result = engine.ok(sql, INCREMENTAL)
    assert result.rows_written == 1000
    assert engine.rows()[:2] == [(0, 399000), (1, 399001)]
    assert len(engine.rows()) == 1000
    if scratch is not None:
        assert not list(scratch.rglob("*.parquet"))  # batch files are gone after the run


def test_partition_by_change_is_a_warning(engine: Engine) -> None:
    engine.ok(values("(1, 'a')"), INCREMENTAL + "partition_by: [{column: id}]\n")
    result = engine.ok(values("(2, 'b')"), INCREMENTAL + "partition_by: [{column: v}]\n")
    assert result.warnings == ["partition_by (identity(v)) is applied only when the table is "
                               "created; the table stays identity(id) until a rebuild"]
    assert [str(f.transform) for f in engine.table().spec().fields] == ["identity"]
    assert engine.rows() == [(1, "a"), (2, "b")]
