"""Effective pipeline config: defaults <- config.yaml <- header annotations, validated per field."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec
import yaml

ANNOTATION = re.compile(r"^\s*(--|#)\s*@([a-z_]+)\s*:\s*(.*?)\s*$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
MAX_CONFIG_BYTES = 64 * 1024
BUILTIN_STRATEGIES: dict[str, tuple[str, ...]] = {
    "full_refresh": (), "incremental": ("unique_key",), "append_only": (),
    "delete_insert": ("unique_key",), "scd2": ("unique_key",), "snapshot": ("partition_column",),
}
# Built-ins plus runner-side plugin strategies (rat.engine.write.register_strategy adds to it).
STRATEGY_KEYS: dict[str, tuple[str, ...]] = dict(BUILTIN_STRATEGIES)
TRANSFORMS = ("identity", "year", "month", "day", "hour")
COLUMN_TESTS = ("not_null", "unique", "accepted_values", "positive", "non_negative",
                "relationships")
_STRUCTURED = ("partition_by", "columns", "freshness")
_BOOL_TRUE = ("true", "yes", "1")
_BOOL_FALSE = ("false", "no", "0")
_DURATION_UNITS = {"minutes": 60, "hours": 3600, "days": 86400}


class PartitionField(msgspec.Struct, frozen=True):
    column: str
    transform: str = "identity"


class ColumnTest(msgspec.Struct, frozen=True):
    name: str
    args: dict[str, Any] = msgspec.field(default_factory=dict)
    severity: str = "error"


class ColumnSpec(msgspec.Struct, frozen=True):
    name: str
    description: str = ""
    tests: list[ColumnTest] = msgspec.field(default_factory=list)


class Freshness(msgspec.Struct, frozen=True):
    warn_after_seconds: int | None = None
    error_after_seconds: int | None = None
    field: str | None = None


class PipelineConfig(msgspec.Struct, frozen=True, kw_only=True):
    description: str = ""
    materialized: str = "table"
    merge_strategy: str = "full_refresh"
    unique_key: list[str] = msgspec.field(default_factory=list)
    watermark_column: str = ""
    partition_column: str = ""
    partition_by: list[PartitionField] = msgspec.field(default_factory=list)
    scd_valid_from: str = "valid_from"
    scd_valid_to: str = "valid_to"
    scd_hard_deletes: str = "ignore"
    archive_landing_zones: bool = False
    max_retries: int = 0
    retry_delay_seconds: int = 30
    columns: list[ColumnSpec] = msgspec.field(default_factory=list)
    freshness: Freshness | None = None


_KEYS = tuple(PipelineConfig.__struct_fields__)


class ConfigResult(msgspec.Struct, kw_only=True):
    config: PipelineConfig
    errors: list[str]
    warnings: list[str]
    config_errors: list[str] = msgspec.field(default_factory=list)


def scan_annotations(text: str, *, python: bool = False) -> list[tuple[int, str, str]]:
    """Header annotations as (line number, key, value), scanning until the first code line."""
    found: list[tuple[int, str, str]] = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        m = ANNOTATION.match(line)
        if m and (m.group(1) == "#") == python:
            found.append((lineno, m.group(2), m.group(3)))
            continue
        is_comment = stripped.startswith("#" if python else "--")
        if not is_comment or (python and stripped.startswith(('"""', "'''"))):
            break
    return found


def strip_annotations(text: str, *, python: bool = False) -> str:
    """Replace annotation lines with empty lines so error line numbers still match the file."""
    lines = text.splitlines()
    for lineno, _key, _value in scan_annotations(text, python=python):
        lines[lineno - 1] = ""
    return "\n".join(lines)


def _as_list(value: Any, field: str, errors: list[str]) -> list[str]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",") if v.strip()]
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        items = [v.strip() for v in value]
    else:
        errors.append(f"{field} must be a list or a comma-separated string")
        return []
    errors.extend(f"{field}: {item!r} is not an identifier" for item in items
                  if not IDENT.match(item))
    return items


def _as_bool(value: Any, field: str, errors: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _BOOL_TRUE:
        return True
    if text not in _BOOL_FALSE:
        errors.append(f"{field} must be true or false")
    return False


def _as_int(value: Any, field: str, low: int, high: int, errors: list[str]) -> int:
    try:
        number = int(str(value).strip()) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None or not low <= number <= high:
        errors.append(f"{field} must be an integer from {low} to {high}")
        return low
    return number


def _as_ident(value: Any, field: str, errors: list[str]) -> str:
    text = str(value).strip() if value is not None else ""
    if text and not IDENT.match(text):
        errors.append(f"{field}: {text!r} is not an identifier")
    return text


def _duration(value: Any, field: str, errors: list[str]) -> int | None:
    if value is None:
        return None
    if isinstance(value, dict) and len(value) == 1:
        unit, amount = next(iter(value.items()))
        if unit in _DURATION_UNITS and isinstance(amount, int | float) and amount > 0:
            return int(amount * _DURATION_UNITS[unit])
    errors.append(f"freshness.{field} must be {{minutes: n}}, {{hours: n}} or {{days: n}}")
    return None


def _freshness(value: Any, errors: list[str]) -> Freshness | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        errors.append("freshness must be a mapping")
        return None
    warn = _duration(value.get("warn_after"), "warn_after", errors)
    error = _duration(value.get("error_after"), "error_after", errors)
    if warn is None and error is None:
        errors.append("freshness needs warn_after or error_after")
    if warn is not None and error is not None and warn > error:
        errors.append("freshness.warn_after must not exceed error_after")
    field = value.get("field")
    if field is not None:
        field = _as_ident(field, "freshness.field", errors)
    return Freshness(warn, error, field or None)


def _partition_by(value: Any, errors: list[str]) -> list[PartitionField]:
    if not isinstance(value, list):
        errors.append("partition_by must be a list of {column, transform}")
        return []
    out = []
    for item in value:
        item = {"column": item} if isinstance(item, str) else item
        if not isinstance(item, dict) or "column" not in item:
            errors.append("partition_by entries need a column")
            continue
        transform = str(item.get("transform", "identity"))
        if transform not in TRANSFORMS:
            errors.append(f"partition_by transform {transform!r} must be one of {', '.join(TRANSFORMS)}")
        out.append(PartitionField(_as_ident(item["column"], "partition_by.column", errors), transform))
    return out


def _column_test(item: Any, column: str, errors: list[str]) -> ColumnTest | None:
    if isinstance(item, str):
        name, args = item, {}
    elif isinstance(item, dict) and len(item) == 1:
        name, raw = next(iter(item.items()))
        args = dict(raw) if isinstance(raw, dict) else {}
    else:
        errors.append(f"columns.{column}.tests entries must be a name or a one-key mapping")
        return None
    if name not in COLUMN_TESTS:
        errors.append(f"columns.{column}: unknown test {name!r}")
        return None
    severity = str(args.pop("severity", "error"))
    severity = "warn" if severity == "warning" else severity
    if severity not in ("error", "warn"):
        errors.append(f"columns.{column}.{name}: severity must be error or warn")
    if name == "accepted_values" and not isinstance(args.get("values"), list):
        errors.append(f"columns.{column}.accepted_values needs values: [...]")
    if name == "relationships" and not (args.get("to") and args.get("field")):
        errors.append(f"columns.{column}.relationships needs to and field")
    return ColumnTest(name, args, severity)


def _columns(value: Any, errors: list[str]) -> list[ColumnSpec]:
    if not isinstance(value, list):
        errors.append("columns must be a list of {name, description?, tests?}")
        return []
    out = []
    for item in value:
        if not isinstance(item, dict) or not item.get("name"):
            errors.append("columns entries need a name")
            continue
        name = _as_ident(item["name"], "columns.name", errors)
        raw_tests = item.get("tests") or []
        tests = [t for t in (_column_test(i, name, errors) for i in raw_tests) if t]
        out.append(ColumnSpec(name, str(item.get("description") or ""), tests))
    return out


def _field(key: str, value: Any, errors: list[str]) -> Any:
    simple: dict[str, Any] = {
        "unique_key": lambda: _as_list(value, key, errors),
        "archive_landing_zones": lambda: _as_bool(value, key, errors),
        "max_retries": lambda: _as_int(value, key, 0, 10, errors),
        "retry_delay_seconds": lambda: _as_int(value, key, 0, 3600, errors),
        "partition_by": lambda: _partition_by(value, errors),
        "columns": lambda: _columns(value, errors),
        "freshness": lambda: _freshness(value, errors),
    }
    if key in simple:
        return simple[key]()
    if key in ("watermark_column", "partition_column", "scd_valid_from", "scd_valid_to"):
        return _as_ident(value, key, errors)
    text = "" if value is None else str(value).strip()
    if key == "description" and len(text) > 5000:
        errors.append("description must be at most 5000 characters")
    return text


def load_yaml(text: str | None, errors: list[str]) -> dict[str, Any]:
    if not text or not text.strip():
        return {}
    if len(text.encode()) > MAX_CONFIG_BYTES:
        errors.append("config.yaml must be at most 64 KB")
        return {}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        errors.append(f"{where}invalid YAML: {getattr(exc, 'problem', exc)}")
        return {}
    if data is None:
        return {}
    if not isinstance(data, dict):
        errors.append("config.yaml must be a mapping")
        return {}
    return data


def _check_semantics(cfg: PipelineConfig, strategies: Mapping[str, tuple[str, ...]],
                     errors: list[str]) -> None:
    if cfg.materialized != "table":
        errors.append("materialized: only 'table' is supported")
    if cfg.merge_strategy not in strategies:
        errors.append(f"merge_strategy {cfg.merge_strategy!r} is not one of "
                      f"{', '.join(sorted(strategies))}")
        return
    errors.extend(f"merge_strategy {cfg.merge_strategy!r} requires {required}"
                  for required in strategies[cfg.merge_strategy] if not getattr(cfg, required))
    if cfg.scd_valid_from == cfg.scd_valid_to:
        errors.append("scd_valid_from and scd_valid_to must differ")
    if cfg.scd_hard_deletes not in ("ignore", "invalidate"):
        errors.append("scd_hard_deletes must be ignore or invalidate")


def build_config(entry_text: str, config_yaml: str | None, *, python: bool = False,
                 strategies: Mapping[str, tuple[str, ...]] = STRATEGY_KEYS) -> ConfigResult:
    """Merge defaults, config.yaml and annotations; collect errors (fatal) and warnings.

    `config_errors` are the errors that belong to config.yaml; the rest belong to the entry file.
    """
    yaml_errors: list[str] = []
    entry_errors: list[str] = []
    warnings: list[str] = []
    values: dict[str, Any] = {}
    for key, value in load_yaml(config_yaml, yaml_errors).items():
        if key not in _KEYS:
            warnings.append(f"unknown key {key!r} in config.yaml")
            continue
        values[key] = _field(key, value, yaml_errors)
    for lineno, key, value in scan_annotations(entry_text, python=python):
        if key not in _KEYS:
            warnings.append(f"line {lineno}: unknown annotation @{key}")
        elif key in _STRUCTURED:
            entry_errors.append(f"line {lineno}: @{key} can only be set in config.yaml")
        else:
            before = len(entry_errors)
            parsed = _field(key, value, entry_errors)
            entry_errors[before:] = [f"line {lineno}: {e}" for e in entry_errors[before:]]
            values[key] = parsed
    config = PipelineConfig(**values)
    semantic: list[str] = []
    _check_semantics(config, strategies, semantic)
    errors = entry_errors + yaml_errors + semantic
    return ConfigResult(config=config, errors=errors, warnings=warnings,
                        config_errors=yaml_errors + semantic)
