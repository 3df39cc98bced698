"""Effective config: defaults <- config.yaml <- annotations, with errors and warnings."""

from __future__ import annotations

from rat.engine.config import build_config, scan_annotations, strip_annotations


def test_annotations_override_yaml_per_field() -> None:
    sql = "-- @merge_strategy: incremental\n-- @unique_key: id, region\n\nSELECT 1"
    result = build_config(sql, "merge_strategy: full_refresh\nmax_retries: 2\n")
    assert result.errors == []
    cfg = result.config
    assert cfg.merge_strategy == "incremental"
    assert cfg.unique_key == ["id", "region"]
    assert cfg.max_retries == 2


def test_scan_stops_at_first_code_line() -> None:
    sql = "-- header\n-- @description: top\nSELECT 1\n-- @merge_strategy: scd2\n"
    assert [k for _, k, _ in scan_annotations(sql)] == ["description"]


def test_python_annotations_use_hash() -> None:
    src = "# @merge_strategy: append_only\nresult = None\n"
    assert build_config(src, None, python=True).config.merge_strategy == "append_only"


def test_strip_keeps_line_numbers() -> None:
    sql = "-- @merge_strategy: append_only\nSELECT 1\n"
    assert strip_annotations(sql).splitlines() == ["", "SELECT 1"]


def test_missing_unique_key_is_an_error_not_a_fallback() -> None:
    result = build_config("-- @merge_strategy: incremental\nSELECT 1", None)
    assert "merge_strategy 'incremental' requires unique_key" in result.errors
    assert result.config.merge_strategy == "incremental"


def test_snapshot_needs_partition_column() -> None:
    assert any("partition_column" in e for e in
               build_config("SELECT 1", "merge_strategy: snapshot").errors)


def test_materialized_view_is_refused() -> None:
    errors = build_config("SELECT 1", "materialized: view").errors
    assert "materialized: only 'table' is supported" in errors


def test_unknown_keys_warn() -> None:
    result = build_config("-- @owner_team: x\nSELECT 1", "owner_team: data\n")
    assert result.errors == []
    assert any("owner_team" in w for w in result.warnings)
    assert len(result.warnings) == 2


def test_invalid_values_are_errors_with_lines() -> None:
    result = build_config("-- @max_retries: eleven\n-- @archive_landing_zones: perhaps\nSELECT 1",
                          None)
    assert any(e.startswith("line 1:") and "max_retries" in e for e in result.errors)
    assert any(e.startswith("line 2:") and "archive_landing_zones" in e for e in result.errors)


def test_structured_keys_only_in_yaml() -> None:
    result = build_config("-- @partition_by: day\nSELECT 1", None)
    assert any("@partition_by can only be set in config.yaml" in e for e in result.errors)


def test_yaml_structures() -> None:
    text = """
partition_by:
  - {column: created_at, transform: day}
columns:
  - name: id
    tests: [not_null, unique]
  - name: status
    tests:
      - accepted_values: {values: [a, b], severity: warn}
freshness: {warn_after: {hours: 1}, error_after: {days: 1}, field: updated_at}
"""
    result = build_config("SELECT 1", text)
    assert result.errors == []
    cfg = result.config
    assert cfg.partition_by[0].transform == "day"
    assert [t.name for t in cfg.columns[0].tests] == ["not_null", "unique"]
    assert cfg.columns[1].tests[0].severity == "warn"
    assert cfg.freshness is not None
    assert (cfg.freshness.warn_after_seconds, cfg.freshness.error_after_seconds) == (3600, 86400)


def test_bad_yaml_reports_line() -> None:
    result = build_config("SELECT 1", "merge_strategy: [unclosed\n")
    assert any("invalid YAML" in e for e in result.config_errors)
