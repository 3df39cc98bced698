"""ASGI middleware: request IDs, security headers, and refusing cross-site state changes."""

from __future__ import annotations

import contextvars
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from rat.core.errors import envelope
from rat.web.deps import new_request_id

REQUEST_ID: contextvars.ContextVar[str] = contextvars.ContextVar("rat_request_id", default="")
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _cross_site(scope: Scope) -> bool:
    """True for a state-changing browser request coming from another site."""
    if scope.get("method", "GET") in _SAFE_METHODS:
        return False
    if _header(scope, b"sec-fetch-site") == "cross-site":
        return True
    origin = _header(scope, b"origin")
    if not origin or origin == "null":
        return origin == "null"
    host = _header(scope, b"host") or ""
    return urlsplit(origin).netloc != host


class RequestContextMiddleware:
    """Assign/echo X-Request-ID, add security headers, refuse cross-site writes with 403."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        rid = new_request_id(_header(scope, b"x-request-id"))
        scope.setdefault("state", {})["request_id"] = rid
        token = REQUEST_ID.set(rid)
        try:
            if _cross_site(scope):
                await _reject(send, rid)
                return
            await self.app(scope, receive, _with_headers(send, rid, scope))
        finally:
            REQUEST_ID.reset(token)


def _with_headers(send: Send, rid: str, scope: Scope) -> Send:
    https = scope.get("scheme") == "https"

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers: list[Any] = list(message.get("headers", []))
            present = {k.lower() for k, _ in headers}
            headers.append((b"x-request-id", rid.encode()))
            headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
            if https:
                headers.append((b"strict-transport-security", b"max-age=31536000"))
            message["headers"] = headers
        await send(message)

    return wrapped


async def _reject(send: Send, rid: str) -> None:
    body = msgspec.json.encode(envelope(403, "cross-site request refused", "FORBIDDEN"))
    start: Any = {"type": "http.response.start", "status": 403, "headers": [
        (b"content-type", b"application/json"), (b"x-request-id", rid.encode()),
        *_SECURITY_HEADERS]}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)
