"""Storage key validation, done before any I/O touches a path built from user input."""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote

from rat.core.errors import Invalid

MAX_KEY_CHARS = 1024
MAX_SEGMENT_BYTES = 255


def _check_plain(key: str) -> None:
    if not key:
        raise Invalid("path must not be empty")
    if len(key) > MAX_KEY_CHARS:
        raise Invalid(f"path must be at most {MAX_KEY_CHARS} characters")
    if key.startswith("/"):
        raise Invalid("path must be relative (no leading '/')")
    if "\\" in key:
        raise Invalid("path must not contain a backslash")
    if any(unicodedata.category(ch) == "Cc" for ch in key):
        raise Invalid("path must not contain NUL or control characters")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise Invalid("path must not contain empty, '.' or '..' segments")
        if len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise Invalid(f"path segments must be at most {MAX_SEGMENT_BYTES} bytes")


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative storage key, else raise Invalid.

    The checks run on the key as given and again after one and two rounds of URL-decoding, so an
    encoded or double-encoded traversal (`%2e%2e`, `%252e%252e`) is refused too.
    """
    once = unquote(key)
    for candidate in (key, once, unquote(once)):
        _check_plain(candidate)
    return key


def validate_filename(name: str, field: str = "filename") -> str:
    """A basename for uploads and samples: no separators, control characters, `..` or leading dot."""
    if not name or len(name.encode()) > MAX_SEGMENT_BYTES:
        raise Invalid(f"{field} must be 1 to {MAX_SEGMENT_BYTES} bytes")
    if "/" in name or "\\" in name or ".." in name or name.startswith("."):
        raise Invalid(f"{field} must be a plain file name (no '/', '\\', '..' or leading '.')")
    if any(unicodedata.category(ch) == "Cc" for ch in name):
        raise Invalid(f"{field} must not contain control characters")
    return name
