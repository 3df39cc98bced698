"""The strategy form's line-level config.yaml edits keep everything it does not own."""

from __future__ import annotations

import yaml

from rat.pipelines.configform import (
    StrategyForm,
    _yaml_value,
    effective_form,
    field_errors,
    form_from_yaml,
    set_keys,
)

CONFIG = """# settings
description: "orders"
merge_strategy: full_refresh
unique_key:
  - a
  - b
columns:
  - name: id
    tests: [not_null]
"""


def test_set_keys_replaces_block_values_and_keeps_the_rest() -> None:
    out = set_keys(CONFIG, {"unique_key": '["id"]', "merge_strategy": '"incremental"',
                            "watermark_column": None})
    assert out.startswith("# settings\n")
    data = yaml.safe_load(out)
    assert data["unique_key"] == ["id"]
    assert data["merge_strategy"] == "incremental"
    assert data["columns"] == [{"name": "id", "tests": ["not_null"]}]
    assert data["description"] == "orders"


def test_set_keys_appends_missing_and_removes_none() -> None:
    out = set_keys("merge_strategy: scd2\nmax_retries: 3\n", {"max_retries": None,
                                                               "partition_column": '"day"'})
    assert yaml.safe_load(out) == {"merge_strategy": "scd2", "partition_column": "day"}


def test_values_cannot_inject_yaml_structure() -> None:
    hostile = "x\nmaterialized: view"
    value = _yaml_value("watermark_column", hostile)
    assert value is not None
    data = yaml.safe_load(set_keys("", {"watermark_column": value}))
    assert data == {"watermark_column": hostile}


def test_form_round_trip_and_defaults() -> None:
    form = form_from_yaml(CONFIG + "archive_landing_zones: yes\nmax_retries: 2\n")
    assert form.unique_key == "a, b"
    assert form.archive_landing_zones == "on"
    assert form.max_retries == "2"
    assert form.scd_valid_from == "valid_from"
    assert form_from_yaml(": not yaml [") == StrategyForm()
    assert _yaml_value("scd_valid_from", "valid_from") is None  # default: key not written
    assert _yaml_value("max_retries", "abc") == '"abc"'


def test_errors_map_to_fields() -> None:
    errors = field_errors(["merge_strategy 'incremental' requires unique_key",
                           "max_retries must be an integer from 0 to 10", "something else"])
    assert errors == {"unique_key": "merge_strategy 'incremental' requires unique_key",
                      "max_retries": "max_retries must be an integer from 0 to 10",
                      "_form": "something else"}


def test_annotations_win_in_the_form() -> None:
    entry = "-- @merge_strategy: incremental\n-- @unique_key: order_id\nSELECT 1 AS order_id"
    shown, annotated = effective_form(form_from_yaml("merge_strategy: full_refresh\n"), entry,
                                      python=False)
    assert (shown.merge_strategy, shown.unique_key) == ("incremental", "order_id")
    assert annotated == {"merge_strategy": 1, "unique_key": 2}
    _, none = effective_form(StrategyForm(), "# @unique_key: id\nSELECT 1", python=False)
    assert none == {}  # a Python-style comment is not an SQL annotation
