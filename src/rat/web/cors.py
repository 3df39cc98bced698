"""Cross-origin browser access to /api/v1 (`RAT_CORS_ORIGINS`; same-origin only by default).

A listed origin may call the API from a browser: its preflights are answered at the edge (204,
never reaching the app), its responses carry `Access-Control-Allow-Origin`, and the edge's
cross-site write refusal does not apply to it. Credentials are never allowed: cross-origin callers
authenticate with `Authorization: Bearer`, and the UI session cookie is dropped from their
requests so a listed site can never act with a user's browser session. An unlisted origin gets no
CORS header at all (the browser blocks it) and its writes stay refused (403).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from litestar.types import HTTPScope

API_PREFIX = "/api/v1/"
_ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE"
# What a browser client of the API sends: auth, JSON bodies, its own request id, SSE resume.
_ALLOW_HEADERS = b"authorization, content-type, x-request-id, x-webhook-token, last-event-id"
_EXPOSE_HEADERS = (b"x-request-id, retry-after, ratelimit-limit, ratelimit-remaining, "
                   b"ratelimit-reset, location, content-disposition")
_MAX_AGE = b"600"
_VARY = (b"vary", b"Origin")


def _header(scope: HTTPScope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


class Cors:
    """The allowed origins and what the edge does for them."""

    def __init__(self, origins: frozenset[str]) -> None:
        self.origins = origins

    def applies(self, scope: HTTPScope) -> bool:
        return bool(self.origins) and scope.get("path", "").startswith(API_PREFIX)

    def listed_origin(self, scope: HTTPScope) -> str | None:
        """The request's origin when it is a listed one and not RAT's own, else None."""
        if not self.applies(scope):
            return None
        origin = _header(scope, b"origin")
        if not origin:
            return None
        parts = urlsplit(origin)
        key = f"{parts.scheme}://{parts.netloc.lower()}"
        own = parts.netloc.lower() == (_header(scope, b"host") or "").lower()
        return origin if key in self.origins and not own else None

    def response_headers(self, scope: HTTPScope, origin: str | None) -> list[tuple[bytes, bytes]]:
        """Headers for every API response: `Vary: Origin`, plus the grant for a listed origin."""
        if not self.applies(scope):
            return []
        if origin is None:
            return [_VARY]
        return [_VARY, (b"access-control-allow-origin", origin.encode("latin-1")),
                (b"access-control-expose-headers", _EXPOSE_HEADERS)]

    @staticmethod
    def is_preflight(scope: HTTPScope) -> bool:
        return scope.get("method") == "OPTIONS" and \
            _header(scope, b"access-control-request-method") is not None

    @staticmethod
    def without_cookies(scope: HTTPScope) -> None:
        """Cross-origin calls authenticate by bearer token only, never by the UI session."""
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k != b"cookie"]

    @staticmethod
    def preflight_start() -> Any:
        return {"type": "http.response.start", "status": 204, "headers": [
            (b"access-control-allow-methods", _ALLOW_METHODS),
            (b"access-control-allow-headers", _ALLOW_HEADERS),
            (b"access-control-max-age", _MAX_AGE), (b"content-length", b"0")]}
