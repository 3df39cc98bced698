"""The merge-strategy form: read and write the strategy keys of config.yaml (P§4.3).

Edits are line-level so comments and structured keys (`columns`, `partition_by`, `freshness`)
survive exactly as the user wrote them; the result is validated with the same config merge as
publish before anything is written.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import msgspec

from rat.core.errors import Invalid
from rat.engine.config import build_config, load_yaml, scan_annotations
from rat.files.service import FilesService, FileWritten
from rat.pipelines.models import Pipeline

_TOP_KEY = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\s*:")
_DIGITS = re.compile(r"^\d{1,6}$")
STRATEGY_KEYS = ("merge_strategy", "unique_key", "watermark_column", "partition_column",
                 "scd_valid_from", "scd_valid_to", "scd_hard_deletes", "archive_landing_zones",
                 "max_retries", "retry_delay_seconds")


class StrategyForm(msgspec.Struct, kw_only=True):
    """Form values as the user typed them (text), so a bad value is shown back unchanged."""

    merge_strategy: str = "full_refresh"
    unique_key: str = ""
    watermark_column: str = ""
    partition_column: str = ""
    scd_valid_from: str = "valid_from"
    scd_valid_to: str = "valid_to"
    scd_hard_deletes: str = "ignore"
    archive_landing_zones: str = ""
    max_retries: str = "0"
    retry_delay_seconds: str = "30"


_DEFAULTS = StrategyForm()


def _text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "on" if value else ""
    return "" if value is None else str(value)


def form_from_yaml(text: str) -> StrategyForm:
    """Current values of config.yaml (defaults for missing keys; unparsable YAML → defaults)."""
    data = load_yaml(text, [])
    values = {k: _text(data[k]) for k in STRATEGY_KEYS if k in data}
    if "archive_landing_zones" in data:
        values["archive_landing_zones"] = "on" if str(data["archive_landing_zones"]).lower() in (
            "true", "yes", "1") else ""
    return msgspec.convert(values, StrategyForm)


class StrategyView(msgspec.Struct, kw_only=True):
    """What the strategy form shows: the effective values.

    `annotated` names the keys the entry file's header annotations set (key → line): those win
    over config.yaml and are edited there.
    """

    form: StrategyForm
    entry: str
    annotated: dict[str, int]
    overridden: dict[str, str]  # annotated keys config.yaml also sets: its (ignored) value


def _entry_of(draft: Mapping[str, str], pipeline: Pipeline) -> str:
    names = ("pipeline.py", "pipeline.sql") if pipeline.type == "python" else (
        "pipeline.sql", "pipeline.py")
    return next((f for f in names if f in draft), "")


def annotated_keys(entry_text: str, *, python: bool) -> dict[str, tuple[int, str]]:
    """Strategy keys set by header annotations: key → (line, value), the last one winning."""
    return {key: (lineno, value) for lineno, key, value in
            scan_annotations(entry_text, python=python) if key in STRATEGY_KEYS}


def effective_form(form: StrategyForm, entry_text: str, *, python: bool,
                   ) -> tuple[StrategyForm, dict[str, int]]:
    """`form` with the annotated keys replaced by the annotations' values."""
    found = annotated_keys(entry_text, python=python)
    values = {key: value.strip() for key, (_line, value) in found.items()}
    if "archive_landing_zones" in values:
        values["archive_landing_zones"] = "on" if values["archive_landing_zones"].lower() in (
            "true", "yes", "1") else ""
    return (msgspec.structs.replace(form, **values),
            {key: line for key, (line, _value) in found.items()})


async def load_strategy(files: FilesService, pipeline: Pipeline,
                        form: StrategyForm | None = None) -> StrategyView:
    """The strategy form as it takes effect.

    config.yaml's values (or `form`, re-shown after an error), with the keys set by annotations
    in the entry file taking the annotations' values.
    """
    draft = await files.pipelines.draft_files(pipeline)
    entry = _entry_of(draft, pipeline)
    yaml_text = draft.get("config.yaml", "")
    in_yaml = form_from_yaml(yaml_text)
    shown, annotated = effective_form(form or in_yaml, draft.get(entry, ""),
                                      python=entry.endswith(".py"))
    overridden = {k: getattr(in_yaml, k) for k in annotated
                  if k in load_yaml(yaml_text, []) and getattr(in_yaml, k) != getattr(shown, k)}
    return StrategyView(form=shown, entry=entry, annotated=annotated, overridden=overridden)


def _yaml_value(key: str, text: str) -> str | None:
    """The YAML to write for one key, or None to drop the key (empty or default value)."""
    text = text.strip()
    if key == "archive_landing_zones":
        return "true" if text else None
    if key == "unique_key":
        keys = [k.strip() for k in text.split(",") if k.strip()]
        return msgspec.json.encode(keys).decode() if keys else None
    if key != "merge_strategy" and text == getattr(_DEFAULTS, key):
        return None
    if not text:
        return None
    if key in ("max_retries", "retry_delay_seconds") and _DIGITS.match(text):
        return text
    # JSON strings are valid YAML scalars and cannot inject structure (newlines, colons).
    return msgspec.json.encode(text).decode()


def set_keys(text: str, values: Mapping[str, str | None]) -> str:
    """Replace (or append) top-level keys; None removes a key. Other lines are kept as written."""
    remaining = dict(values)
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        match = _TOP_KEY.match(line)
        if match and match.group(1) in remaining:
            value = remaining.pop(match.group(1))
            if value is not None:
                out.append(f"{match.group(1)}: {value}")
            skipping = True
            continue
        if skipping and (not line.strip() or line[:1] in (" ", "\t", "-")):
            continue  # continuation of the value being replaced (block list or mapping)
        skipping = False
        out.append(line)
    out.extend(f"{k}: {v}" for k, v in remaining.items() if v is not None)
    return "\n".join(out) + "\n"


def field_errors(errors: list[str]) -> dict[str, str]:
    """Map each error message to the form field it names (messages start with the key)."""
    out: dict[str, str] = {}
    for message in errors:
        # "merge_strategy 'x' requires unique_key" belongs next to the missing field.
        named = message.split(" requires ", 1)[1:] or [message]
        key = next((k for k in STRATEGY_KEYS if k in named[0]), "_form")
        out[key] = f"{out[key]}; {message}" if key in out else message
    return out


async def save_strategy(files: FilesService, pipeline: Pipeline, form: StrategyForm,
                        ) -> FileWritten:
    """Write the strategy keys into config.yaml after validating the merged config.

    Keys set by header annotations in the entry file are left as config.yaml has them. Raises
    Invalid (with `extra["fields"]`: field → message) and writes nothing when the result would
    not publish.
    """
    draft = await files.pipelines.draft_files(pipeline)
    name = _entry_of(draft, pipeline)
    entry = draft.get(name, "")
    python = name.endswith(".py")
    # Keys set by annotations are read-only in the form: config.yaml keeps what it had for them
    # (the annotation wins either way), so the form can never write a contradicting value.
    annotated = annotated_keys(entry, python=python)
    values = {k: _yaml_value(k, getattr(form, k)) for k in STRATEGY_KEYS if k not in annotated}
    updated = set_keys(draft.get("config.yaml", ""), values)
    result = build_config(entry, updated, python=python)
    if result.config_errors:
        raise Invalid("; ".join(result.config_errors),
                      extra={"fields": field_errors(result.config_errors)})
    return await files.write(pipeline.prefix + "config.yaml", updated)
