"""The edge: the outermost ASGI layer, around Litestar's router, so it also sees 404s and 405s.

Per HTTP request, in order: assign/echo X-Request-ID, answer CORS preflights of listed origins
(rat.web.cors), refuse other cross-site writes (403), apply the client's rate limit (429) and stream
slots, refuse oversized bodies (413), then call the app and record the request's metrics and
access-log line. Every response gets the security headers (and CORS headers on /api/v1).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, ReceiveMessage, Scope, Send

from rat.config import Settings, parse_origins
from rat.core.context import REQUEST_ID
from rat.core.errors import TooLarge, envelope
from rat.core.metrics import Registry
from rat.web.body import MAX_JSON_BYTES
from rat.web.cors import Cors
from rat.web.deps import new_request_id
from rat.web.ratelimit import (
    ClientAddress,
    Decision,
    Rule,
    StreamSlots,
    TokenBuckets,
    parse_networks,
)

access_log = logging.getLogger("rat.access")
_SAFE_METHODS = {"GET", "HEAD", "OPTIONS", "TRACE"}
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000")
# Probes, scrapes and static assets are never limited and are logged at debug level only.
_EXEMPT = ("/health", "/metrics", "/static/")
# Multipart framing (boundaries, part headers) on top of the upload limit itself.
_MULTIPART_FRAMING = 1024 * 1024
# UI form posts (url-encoded code of up to 1 MiB can triple in size).
_FORM_MAX_BYTES = 4 * 1024 * 1024
WEBHOOK_PER_MINUTE, WEBHOOK_BURST = 100, 20
LOGIN_PER_MINUTE, LOGIN_BURST = 10, 10
SSE_PER_CLIENT, SSE_TOTAL = 10, 1000
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


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


def _body_limit(scope: Scope, upload_max: int) -> int:
    ctype = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return upload_max + _MULTIPART_FRAMING
    if ctype == "application/json":
        return MAX_JSON_BYTES
    return _FORM_MAX_BYTES


def _limited_receive(receive: Receive, limit: int) -> Receive:
    """Count body bytes as the app reads them (chunked bodies carry no Content-Length)."""
    seen = 0

    async def wrapped() -> ReceiveMessage:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise TooLarge(f"request body must be at most {limit} bytes")
        return message

    return wrapped


class HttpMetrics:
    def __init__(self, registry: Registry, streams: StreamSlots) -> None:
        self.requests = registry.counter("rat_http_requests_total", "HTTP requests served.",
                                         ("method", "route", "status"))
        self.latency = registry.histogram("rat_http_request_duration_seconds",
                                          "HTTP request latency.", ("method", "route"), HTTP_BUCKETS)
        self.in_flight = registry.gauge("rat_http_requests_in_flight",
                                        "HTTP requests being served.")
        self.limited = registry.counter("rat_http_rate_limited_total",
                                        "Requests refused by a rate limit.", ("rule",))
        registry.gauge("rat_sse_connections", "Open Server-Sent Event streams.",
                       source=lambda: {(): float(streams.count)})
        self.query_latency = registry.histogram("rat_query_duration_seconds",
                                                "Console query latency (POST /api/v1/query).",
                                                buckets=HTTP_BUCKETS)


class Edge:
    """Wraps Litestar's ASGI handler; built once per app by `install_edge`."""

    def __init__(self, app: ASGIApp, settings: Settings, registry: Registry) -> None:
        self.app = app
        self.upload_max = settings.upload_max_bytes
        self.clients = ClientAddress(parse_networks(settings.trusted_proxies))
        self.rules = _rules(settings)
        self.streams = StreamSlots(SSE_PER_CLIENT, SSE_TOTAL)
        self.metrics = HttpMetrics(registry, self.streams)
        self.cors = Cors(parse_origins(settings.cors_origins))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _http(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        rid = new_request_id(_header(scope, b"x-request-id"))
        scope.setdefault("state", {})["request_id"] = rid
        token = REQUEST_ID.set(rid)
        status = [500]
        started = time.perf_counter()
        self.metrics.in_flight.inc(amount=1)
        try:
            https = scope.get("scheme") == "https" or self._forwarded_https(scope)
            origin = self.cors.listed_origin(scope)
            extra = self.cors.response_headers(scope, origin)
            await self._serve(scope, receive, _with_headers(send, rid, status, https=https,
                                                            extra=extra), origin)
        finally:
            self.metrics.in_flight.inc(amount=-1)
            self._record(scope, status[0], time.perf_counter() - started)
            REQUEST_ID.reset(token)

    def _forwarded_https(self, scope: HTTPScope) -> bool:
        client = scope.get("client")
        return (_header(scope, b"x-forwarded-proto") == "https" and client is not None
                and self.clients.is_trusted(str(client[0])))

    async def _serve(self, scope: HTTPScope, receive: Receive, send: Send,
                     origin: str | None) -> None:
        path = scope.get("path", "")
        if path.startswith(_EXEMPT):
            await self.app(scope, receive, send)
            return
        if origin is not None:
            if self.cors.is_preflight(scope):
                await send(self.cors.preflight_start())
                end: Any = {"type": "http.response.body", "body": b""}
                await send(end)
                return
            self.cors.without_cookies(scope)
        elif _cross_site(scope):
            await _refuse(send, 403, "cross-site request refused")
            return
        client = self.clients.of(scope)
        decision = self._check_rate(scope["method"], path, client)
        if decision is not None:
            await _refuse(send, 429, "rate limit exceeded; retry later", _rate_headers(decision))
            return
        limit = _body_limit(scope, self.upload_max)
        length = _header(scope, b"content-length")
        if length and length.isdigit() and int(length) > limit:
            await _refuse(send, 413, f"request body must be at most {limit} bytes")
            return
        await self._stream_or_call(scope, _limited_receive(receive, limit), send, client)

    def _check_rate(self, method: str, path: str, client: str) -> Decision | None:
        for rule in self.rules:
            if rule.matches(method, path):
                decision = rule.buckets.take(client)
                if decision.allowed:
                    return None
                self.metrics.limited.inc(rule.name)
                return decision
        return None

    async def _stream_or_call(self, scope: HTTPScope, receive: Receive, send: Send,
                              client: str) -> None:
        accept = _header(scope, b"accept") or ""
        if scope["method"] != "GET" or "text/event-stream" not in accept:
            await self.app(scope, receive, send)
            return
        if not self.streams.acquire(client):
            self.metrics.limited.inc("sse")
            await _refuse(send, 429, "too many open event streams", {"retry-after": "5"})
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.streams.release(client)

    def _record(self, scope: HTTPScope, status: int, seconds: float) -> None:
        route = str(scope.get("path_template") or "unmatched")
        method = str(scope.get("method", ""))
        self.metrics.requests.inc(method, route, str(status))
        self.metrics.latency.observe(seconds, method, route)
        if route == "/api/v1/query":
            self.metrics.query_latency.observe(seconds)
        level = logging.DEBUG if scope.get("path", "").startswith(_EXEMPT) else logging.INFO
        if access_log.isEnabledFor(level):
            access_log.log(level, "%s %s %s %.1fms", method, scope.get("path", ""), status,
                           seconds * 1000)


def _rules(settings: Settings) -> list[Rule]:
    """First match wins: webhooks and login have their own budgets; the rest share the API's.

    Logins share one budget: the token form and the OIDC callback (which costs a token request
    at the identity provider).
    """
    login = TokenBuckets(LOGIN_PER_MINUTE / 60, LOGIN_BURST)
    rules = [
        Rule("webhook", TokenBuckets(WEBHOOK_PER_MINUTE / 60, WEBHOOK_BURST), "/api/v1/webhooks",
             exact=True),
        Rule("login", login, "/login", exact=True, method="POST"),
        Rule("login", login, "/login/oidc/callback", exact=True, method="GET"),
    ]
    if settings.rate_limit_rps > 0:
        rules.append(Rule("api", TokenBuckets(settings.rate_limit_rps, settings.rate_limit_burst),
                          "/", exact=False))
    return rules


def _rate_headers(decision: Decision) -> dict[str, str]:
    return {"retry-after": str(decision.retry_after),
            "ratelimit-limit": str(decision.limit),
            "ratelimit-remaining": str(decision.remaining),
            "ratelimit-reset": str(decision.reset_seconds)}


def _with_headers(send: Send, rid: str, status: list[int], *, https: bool,
                  extra: list[tuple[bytes, bytes]]) -> Send:
    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = int(message["status"])
            headers: list[Any] = list(message.get("headers", []))
            present = {k.lower() for k, _ in headers}
            headers.append((b"x-request-id", rid.encode()))
            headers.extend(h for h in _SECURITY_HEADERS if h[0] not in present)
            headers.extend(extra)
            if https:
                headers.append(_HSTS)
            message["headers"] = headers
        await send(message)

    return wrapped


async def _refuse(send: Send, status: int, message: str,
                  headers: dict[str, str] | None = None) -> None:
    body = msgspec.json.encode(envelope(status, message))
    extra = [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    start: Any = {"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        *extra]}
    await send(start)
    end: Any = {"type": "http.response.body", "body": body}
    await send(end)


def install_edge(app: Any, settings: Settings, registry: Registry) -> None:
    """Put the edge around the app's ASGI handler (outside routing and exception handling)."""
    handler: Callable[[Scope, Receive, Send], Awaitable[None]] = app.asgi_handler
    app.asgi_handler = Edge(handler, settings, registry)
