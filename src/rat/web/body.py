"""Strict JSON request bodies: content type, size, and field-naming validation errors."""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
from litestar import Request

from rat.core.errors import Invalid, TooLarge, UnsupportedMedia

T = TypeVar("T")
MAX_JSON_BYTES = 1024 * 1024
_CACHE_KEY = "rat_json_body"
_FIELD = re.compile(r"at `\$\.([A-Za-z0-9_.\[\]]+)`")


async def read_json(request: Request[Any, Any, Any], model: type[T], *,
                    optional: bool = False) -> T:
    """Decode the body into `model`; 415 wrong type, 413 > 1 MiB, 400 malformed or wrong field."""
    raw = await raw_body(request)
    if not raw.strip():
        if optional:
            return msgspec.convert({}, model)
        raise Invalid("request body must be a JSON object")
    if not _is_json(request.headers.get("content-type", "")):
        raise UnsupportedMedia("Content-Type must be application/json")
    try:
        data = msgspec.json.decode(raw)
    except msgspec.DecodeError:
        raise Invalid("request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise Invalid("request body must be a JSON object")
    try:
        return msgspec.convert(data, model, strict=True)
    except msgspec.ValidationError as exc:
        raise Invalid(_explain(exc)) from None


def _is_json(content_type: str) -> bool:
    return content_type.split(";")[0].strip().lower() == "application/json"


async def raw_body(request: Request[Any, Any, Any]) -> bytes:
    """The body (at most 1 MiB), read once.

    Cached on the request so the access guard and the handler can both look at it.
    """
    cached = request.scope.get("state", {}).get(_CACHE_KEY)
    if cached is not None:
        return bytes(cached)
    raw = await _read_limited(request)
    request.scope.setdefault("state", {})[_CACHE_KEY] = raw
    return raw


async def _read_limited(request: Request[Any, Any, Any]) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > MAX_JSON_BYTES:
        raise TooLarge("request body must be at most 1 MiB")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_JSON_BYTES:
            raise TooLarge("request body must be at most 1 MiB")
        chunks.append(chunk)
    return b"".join(chunks)


def _explain(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    m = _FIELD.search(text)
    reason = text.split(" - at ")[0]
    if "Object missing required field" in reason:
        missing = reason.split("`")[1] if "`" in reason else "a field"
        return f"{missing}: required"
    return f"{m.group(1)}: {reason}" if m else reason
