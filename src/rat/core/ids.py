"""Identifier rules shared by every slice: slugs, layers, UUIDs, identifiers."""

from __future__ import annotations

import re
import uuid
from typing import Literal

from rat.core.errors import Invalid

SLUG = re.compile(r"^[a-z][a-z0-9_-]*$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LAYERS = ("bronze", "silver", "gold")
Layer = Literal["bronze", "silver", "gold"]
DEFAULT_NAMESPACE = "default"


def slug(value: str, field: str = "name") -> str:
    if not isinstance(value, str) or not value or len(value) > 128 or not SLUG.match(value):
        raise Invalid(f"{field} must match ^[a-z][a-z0-9_-]*$ and be at most 128 characters")
    return value


def layer(value: str, field: str = "layer") -> Layer:
    if value not in LAYERS:
        raise Invalid(f"{field} must be one of bronze, silver, gold")
    return value  # type: ignore[return-value]


def parse_uuid(value: str, field: str = "id") -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise Invalid(f"{field} must be a UUID") from None


def identifier(value: str, field: str) -> str:
    if not IDENTIFIER.match(value):
        raise Invalid(f"{field}: {value!r} is not an identifier ([A-Za-z_][A-Za-z0-9_]*)")
    return value


def table_name(namespace: str, layer_: str, name: str) -> str:
    return f"{namespace}.{layer_}.{name}"
