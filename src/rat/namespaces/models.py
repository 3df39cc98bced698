"""Namespace shapes as the API returns and accepts them."""

from __future__ import annotations

from datetime import datetime

import msgspec


class Namespace(msgspec.Struct, kw_only=True):
    name: str
    description: str
    created_by: str | None
    created_at: datetime


class NamespacePage(msgspec.Struct, kw_only=True):
    namespaces: list[Namespace]
    total: int


class NamespaceCreate(msgspec.Struct, kw_only=True):
    name: str = ""
    description: str = ""


class NamespaceUpdate(msgspec.Struct, kw_only=True):
    description: str
