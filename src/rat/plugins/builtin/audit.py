"""rat-audit: an audit log of every mutation, API and UI forms alike (product §15).

Entry: user, action (post|put|delete), resource (the path), detail (status, request id and a body
summary without secrets), client IP, time. Written after the response, never failing the request.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any

import msgspec

from rat.core.errors import Invalid
from rat.core.timefmt import parse_rfc3339
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.pipelines.service import check_page

log = logging.getLogger("rat.plugins.audit")
Q = load_queries("rat.plugins.builtin", "audit.sql")
ACTIONS = ("post", "put", "delete")
_SECRET_WORDS = ("token", "secret", "password", "key", "credential", "content", "sql", "code",
                 "source")
MAX_VALUE_CHARS = 100


class AuditEntry(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    user_id: str | None
    action: str
    resource: str
    detail: dict[str, Any]
    ip: str | None
    created_at: datetime


class AuditPage(msgspec.Struct, kw_only=True):
    entries: list[AuditEntry]
    total: int


class RequestInfo(msgspec.Struct, kw_only=True):
    """What the platform middleware reports after a state-changing request."""

    method: str
    path: str
    status: int
    user_id: str | None
    ip: str | None
    request_id: str
    body: dict[str, Any] | None


def summary(body: dict[str, Any] | None) -> dict[str, Any]:
    """Field names, and short scalar values of fields that cannot hold secrets or code."""
    out: dict[str, Any] = {}
    for key, value in (body or {}).items():
        secret = any(w in key.lower() for w in _SECRET_WORDS)
        if secret or isinstance(value, (dict, list)):
            out[key] = "…"
        elif isinstance(value, str) and len(value) > MAX_VALUE_CHARS:
            out[key] = value[:MAX_VALUE_CHARS] + "…"
        else:
            out[key] = value
    return out


def _time(text: str | None, name: str) -> datetime | None:
    if not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise Invalid(f"{name} must be an RFC 3339 timestamp") from None


class AuditLog:
    def __init__(self) -> None:
        self.db: Database | None = None

    async def start(self, runtime: Any) -> None:
        self.db = runtime.db

    async def record(self, info: RequestInfo) -> None:
        if self.db is None or info.status == 401:
            return
        action = {"patch": "put"}.get(info.method.lower(), info.method.lower())
        detail = {"status": info.status, "request_id": info.request_id,
                  "body": summary(info.body)}
        try:
            await self.db.exec(Q["insert_entry"], uuid.uuid4(), info.user_id, action, info.path,
                               detail, info.ip)
        except Exception:
            log.exception("audit entry for %s %s not written", info.method, info.path)

    async def list(self, *, user_id: str | None, action: str | None, since: str | None,
                   until: str | None, limit: int, offset: int) -> AuditPage:
        check_page(limit, offset)
        if action and action not in ACTIONS:
            raise Invalid("action must be post, put or delete")
        assert self.db is not None  # noqa: S101
        args = (user_id or None, action or None, _time(since, "since"), _time(until, "until"))
        rows = await self.db.many(Q["list_entries"], *args, limit, offset)
        total = int(rows[0]["total"]) if rows else int(await self.db.val(Q["count_entries"], *args))
        return AuditPage(entries=[AuditEntry(**{k: v for k, v in r.items() if k != "total"})
                                  for r in rows], total=total)


class AuditPlugin:
    name = "rat-audit"
    version = "1"
    slots = ("feature",)
    config_type = None

    def __init__(self) -> None:
        self.log = AuditLog()

    def activate(self, ctx: Any) -> None:
        ctx.add_capability("audit")
        ctx.add_request_observer(self.log.record)
        ctx.on_start(self.log.start)


plugin = AuditPlugin
