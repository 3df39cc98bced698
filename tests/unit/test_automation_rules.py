"""Pure rules of the automation slices: cron parsing, upload names, preview formats, labels."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from rat.core.errors import Invalid
from rat.engine.landing_preview import preview_format
from rat.landing.archive import archive_key
from rat.landing.naming import sanitized, stored_name
from rat.schedules.cron import check_cron, check_timezone, next_after
from rat.schedules.firing import label
from rat.schedules.models import TriggerRow

AT = datetime(2026, 3, 7, 9, 5, 1, 250000, tzinfo=UTC)


@pytest.mark.parametrize("expr", ["* * * * *", "*/5 1-3 * * mon-fri", "0 0 1 1 *",
                                  "*/2 * * * * *", "@hourly", "@daily", "@weekly", "@monthly",
                                  "@yearly", "  0  6 * * *  "])
def test_valid_cron(expr: str) -> None:
    assert check_cron(expr) == " ".join(expr.split())


@pytest.mark.parametrize("expr", ["", "* * * *", "* * * * * * *", "61 * * * *", "@often",
                                  "0 0 31 2 *", "x" * 201, "* * * * * 99"])
def test_invalid_cron(expr: str) -> None:
    with pytest.raises(Invalid, match="cron"):
        check_cron(expr)


def test_non_string_cron_names_the_field() -> None:
    with pytest.raises(Invalid, match=r"config\.cron_expr"):
        check_cron(5, "config.cron_expr")


def test_next_after_seconds_timezones_and_dst() -> None:
    assert next_after("*/2 * * * * *", "UTC", AT) == datetime(2026, 3, 7, 9, 5, 2, tzinfo=UTC)
    assert next_after("* * * * *", "UTC", AT) == datetime(2026, 3, 7, 9, 6, tzinfo=UTC)
    # 06:00 in Paris is 05:00 UTC in winter
    assert next_after("0 6 * * *", "Europe/Paris", AT) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    # 02:30 does not exist on the US spring-forward day; the run still happens that day
    spring = next_after("30 2 * * *", "America/New_York", datetime(2026, 3, 8, 5, tzinfo=UTC))
    assert spring.astimezone(ZoneInfo("America/New_York")).day == 8
    assert next_after("@hourly", "UTC", AT) == datetime(2026, 3, 7, 10, 0, tzinfo=UTC)


def test_timezone_validation() -> None:
    assert check_timezone("Asia/Tokyo") == "Asia/Tokyo"
    for bad in ("", "Mars/Base", "../etc/passwd", 3):
        with pytest.raises(Invalid, match="timezone"):
            check_timezone(bad)


def test_stored_names() -> None:
    assert stored_name("orders.csv", AT) == "20260307_090501_orders.csv"
    assert stored_name("orders.csv.gz", AT, 2) == "20260307_090501_orders_2.csv.gz"
    assert stored_name("my data [v2]*.csv", AT) == "20260307_090501_my_data_v2_.csv"
    assert stored_name("noext", AT, 1) == "20260307_090501_noext_1"
    assert sanitized("café.csv") == "café.csv"
    long = stored_name("x" * 250 + ".csv", AT, 12)
    assert len(long.encode()) <= 255
    assert long.endswith("_12.csv")
    for bad in ("../a.csv", "a/b", "a\\b", ".env", "x\x00y", "", "é" * 200):
        with pytest.raises(Invalid):
            stored_name(bad, AT)


@pytest.mark.parametrize(("name", "fmt"), [
    ("a.csv", "csv"), ("A.CSV", "csv"), ("a.tsv.gz", "csv"), ("a.json", "json"),
    ("a.ndjson", "json"), ("a.jsonl.gz", "json"), ("a.parquet", "parquet"),
    ("a.parquet.gz", None), ("a.xlsx", None), ("noext", None), ("a.gz", None)])
def test_preview_formats(name: str, fmt: str | None) -> None:
    assert preview_format(name) == fmt


def test_archive_key_only_moves_top_level_files() -> None:
    run = str(uuid.uuid4())
    assert archive_key("ns/landing/z/20260101_000000_a.csv", run) == \
        f"ns/landing/z/_processed/{run}/20260101_000000_a.csv"
    assert archive_key("ns/landing/z/_samples/a.csv", run) is None
    assert archive_key("ns/pipelines/bronze/p/pipeline.sql", run) is None


def _trigger(type_: str, config: dict[str, object]) -> TriggerRow:
    now = datetime.now(UTC)
    return TriggerRow(id=uuid.uuid4(), pipeline_id=uuid.uuid4(), type=type_, config=config,
                      enabled=True, cooldown_seconds=0, last_triggered_at=None, last_run_id=None,
                      armed_at=None, token_hash="abcdef0123456789", created_at=now,
                      updated_at=now, namespace="default", layer="bronze", pipeline="p")


def test_trigger_labels() -> None:
    zone = {"namespace": "ns", "zone_name": "inbox"}
    assert label(_trigger("landing_zone_upload", zone)) == "trigger:landing_zone_upload:ns/inbox"
    assert label(_trigger("file_pattern", {**zone, "pattern": "*.csv"})) == \
        "trigger:file_pattern:ns/inbox:*.csv"
    assert label(_trigger("pipeline_success", {"namespace": "ns", "layer": "bronze",
                                               "pipeline": "raw"})) == \
        "trigger:pipeline_success:ns/bronze/raw"
    assert label(_trigger("webhook", {})) == "trigger:webhook:abcdef01"
    assert label(_trigger("cron", {"cron_expr": "@daily"})) == "trigger:cron:@daily"
    assert label(_trigger("cron_dependency", {"cron_expr": "@daily", "dependencies": []})) == \
        "trigger:cron_dependency:@daily"


def test_retention_defaults_match_the_pipeline_overrides_table() -> None:
    import msgspec

    from rat.pipelines.retention import DEFAULTS, PIPELINE_KEYS
    from rat.retention.models import RetentionConfig

    assert msgspec.structs.asdict(RetentionConfig()) == DEFAULTS
    assert set(PIPELINE_KEYS) < set(DEFAULTS)
