"""Stored names of landing uploads: `YYYYMMDD_HHMMSS_` + a sanitised basename, suffixed on collision."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from rat.storage.keys import MAX_SEGMENT_BYTES, validate_filename

# Glob metacharacters and whitespace would change what DuckDB's `zone/*` reads; keep names plain.
_UNSAFE = re.compile(r"[^\w.\-]+")
_STAMP = "%Y%m%d_%H%M%S_"
MAX_EXTENSION_BYTES = 32


def sanitized(filename: str) -> str:
    """The basename with every run of unsafe characters replaced by `_` (after validation)."""
    validate_filename(filename)
    return _UNSAFE.sub("_", filename)


def split_extension(name: str) -> tuple[str, str]:
    """`data.csv.gz` → (`data`, `.csv.gz`): suffixes go before the whole extension."""
    dot = name.find(".", 1)
    return (name, "") if dot < 0 else (name[:dot], name[dot:])


def stored_name(filename: str, at: datetime, attempt: int = 0) -> str:
    """The object name for an upload at `at` (UTC); `attempt` > 0 adds `_N` before the extension."""
    stem, ext = split_extension(sanitized(filename))
    if len(ext.encode()) > MAX_EXTENSION_BYTES:  # not really an extension: part of the name
        stem, ext = stem + ext, ""
    suffix = f"_{attempt}" if attempt else ""
    prefix = at.astimezone(UTC).strftime(_STAMP)
    budget = MAX_SEGMENT_BYTES - len(prefix) - len(suffix) - len(ext.encode())
    stem = stem.encode()[:budget].decode(errors="ignore")
    return f"{prefix}{stem}{suffix}{ext}"
