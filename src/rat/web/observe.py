"""ASGI middleware for the platform plugins.

Refreshes the UI session cookie while it is used, and reports every state-changing request to
the request observers (rat-audit) after the response went out.
"""

from __future__ import annotations

import logging
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from rat.web.access import PRINCIPAL_KEY, REFRESH_KEY

log = logging.getLogger("rat.web")
_MUTATIONS = {"POST", "PUT", "PATCH", "DELETE"}


class PlatformMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        status = [500]

        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                _refresh_cookie(scope, message)
            await send(message)

        await self.app(scope, receive, wrapped)
        if scope.get("method") in _MUTATIONS:
            await _observe(scope, status[0])


def _state(scope: Scope) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


def _refresh_cookie(scope: Scope, message: Any) -> None:
    state = _state(scope)
    who = state.get(PRINCIPAL_KEY)
    ctl = scope["app"].state.get("access")
    if not state.get(REFRESH_KEY) or who is None or ctl is None:
        return
    from rat.web.session import cookie_header

    value = cookie_header(ctl.sessions.dump(who), secure=scope.get("scheme") == "https")
    message["headers"] = [*message.get("headers", []), (b"set-cookie", value.encode())]


async def _observe(scope: Scope, status: int) -> None:
    host = scope["app"].state.get("plugins")
    observers = host.observers() if host is not None else []
    if not observers:
        return
    import msgspec

    from rat.plugins.builtin.audit import RequestInfo

    state = _state(scope)
    who = state.get(PRINCIPAL_KEY)
    raw = state.get("rat_json_body")
    try:
        body = msgspec.json.decode(raw) if raw else None
    except msgspec.DecodeError:
        body = None
    client = scope.get("client")
    info = RequestInfo(method=str(scope.get("method")), path=str(scope["path"]), status=status,
                       user_id=who.user_id if who is not None else None,
                       ip=client[0] if client else None,
                       request_id=str(state.get("request_id", "")),
                       body=body if isinstance(body, dict) else None)
    for observer in observers:
        try:
            await observer(info)
        except Exception:
            log.exception("request observer failed")
