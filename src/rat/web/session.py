"""Signed UI session cookies: HttpOnly, SameSite=Lax, Secure under HTTPS, 12 h idle expiry.

The cookie carries the principal (no server-side session table): `base64(json).hmac`. `seen` is
refreshed at most every 5 minutes, so an active user stays logged in and an idle one expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any, TypeVar

import msgspec

from rat.plugins.protocols import Principal

COOKIE = "rat_session"
IDLE_SECONDS = 12 * 3600
REFRESH_SECONDS = 300
T = TypeVar("T", bound=msgspec.Struct)


class Session(msgspec.Struct, kw_only=True):
    principal: Principal
    seen: float


class SessionSigner:
    """Signs values with a key derived from the secret and a purpose.

    A value signed for one purpose (the session, a login in progress) is never accepted for
    another.
    """

    def __init__(self, secret: str, purpose: str = "session") -> None:
        self._secret = secret
        self._key = hashlib.sha256(f"rat-{purpose}:{secret}".encode()).digest()

    def derive(self, purpose: str) -> SessionSigner:
        return SessionSigner(self._secret, purpose)

    def _mac(self, payload: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(self._key, payload, hashlib.sha256).digest()
                                        ).decode().rstrip("=")

    def seal(self, value: msgspec.Struct) -> str:
        """`base64(json).hmac`, safe in a cookie."""
        payload = base64.urlsafe_b64encode(msgspec.json.encode(value)).decode().rstrip("=")
        return f"{payload}.{self._mac(payload.encode())}"

    def unseal(self, value: str, type: type[T]) -> T | None:
        """The value if the signature is valid and it decodes as `type`, else None."""
        payload, _, mac = value.partition(".")
        if not payload or not hmac.compare_digest(mac, self._mac(payload.encode())):
            return None
        try:
            raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
            return msgspec.json.decode(raw, type=type)
        except (ValueError, msgspec.DecodeError):
            return None

    def dump(self, principal: Principal, now: float | None = None) -> str:
        return self.seal(Session(principal=principal, seen=now or time.time()))

    def load(self, value: str, now: float | None = None) -> Session | None:
        """The session if the signature is valid and it was used within the idle window."""
        session = self.unseal(value, Session)
        if session is None or (now or time.time()) - session.seen > IDLE_SECONDS:
            return None
        return session


def cookie_header(value: str, *, secure: bool, max_age: int = IDLE_SECONDS, name: str = COOKIE,
                  path: str = "/") -> str:
    parts = [f"{name}={value}", f"Path={path}", "HttpOnly", "SameSite=Lax", f"Max-Age={max_age}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def needs_refresh(session: Session, now: float | None = None) -> bool:
    return (now or time.time()) - session.seen > REFRESH_SECONDS


def read_cookie(headers: Any, cookie: str = COOKIE) -> str | None:
    for part in (headers.get("cookie") or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == cookie and value:
            return value
    return None
