"""Central authentication and authorization, driven by each route's access declaration.

Every route handler declares `opt=access(MARK, RESOLVER)` (api.md §5): MARK is one of
`public`, `any`, `filtered`, `SA`, `R`, `W`, `A`; RESOLVER names how the guarded resource is found
from the request (see RESOLVERS). One guard, installed on the whole app, enforces it:
authenticate (auth plugin, RAT_API_KEY, or the UI session), then check the mark. No read access
-> 404 (existence is not revealed); read but less than needed -> 403. List endpoints (`filtered`)
narrow their results with `await read_scope(request)`. Community (no auth, no authorizer, no
key) is one dictionary lookup per request. tests/unit/test_route_access.py fails for any route
without a declaration, so new routes are covered.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal

import msgspec
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from rat.core.errors import Forbidden, Invalid, NotFound, Unauthenticated
from rat.plugins.protocols import (
    ANONYMOUS_ADMIN,
    Authorizer,
    AuthProvider,
    Permission,
    Principal,
    ReadScope,
    Resource,
)
from rat.plugins.resources import ResourceLookup
from rat.web.session import SessionSigner, needs_refresh, read_cookie

log = logging.getLogger("rat.access")
Mark = Literal["public", "any", "filtered", "SA", "R", "W", "A"]
MARKS: tuple[str, ...] = ("public", "any", "filtered", "SA", "R", "W", "A")
PERMISSION: dict[str, Permission] = {"R": "read", "W": "write", "A": "admin"}
_PUBLIC_PREFIXES = ("/static/", "/schema")
PRINCIPAL_KEY = "rat_principal"
REFRESH_KEY = "rat_session_refresh"


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """A route's authorization contract (kept in the handler's `opt["access"]`)."""

    mark: str
    resolver: str | None = None
    escalate: tuple[str, ...] = ()
    body: Any = None
    errors: tuple[int, ...] = ()


def access(mark: Mark, resolver: str | None = None, *, escalate: tuple[str, ...] = (),
           body: Any = None, errors: tuple[int, ...] = ()) -> dict[str, Any]:
    """The `opt` for a route handler.

    `escalate` lists body fields that, when present and truthy, raise the need to admin (e.g.
    `owner` on PUT, `restore_data` on rollback). `body` (a msgspec type) and `errors` feed the
    OpenAPI document.
    """
    if mark not in MARKS:
        raise ValueError(f"unknown access mark {mark!r}")
    if mark in PERMISSION and resolver not in RESOLVERS:
        raise ValueError(f"access {mark} needs a resolver, one of {', '.join(RESOLVERS)}")
    return {"access": Access(mark=mark, resolver=resolver, escalate=escalate, body=body,
                             errors=errors)}


def declared(handler: BaseRouteHandler) -> Access | None:
    value = handler.opt.get("access")
    return value if isinstance(value, Access) else None


Resolver = Callable[[ResourceLookup, dict[str, Any], dict[str, Any]], Awaitable[Resource | None]]


def _q(body: dict[str, Any], *names: str) -> Any:
    return next((body[n] for n in names if body.get(n)), None)


async def _deferred(_lk: ResourceLookup, _p: dict[str, Any], _b: dict[str, Any]) -> None:
    """The handler checks with `require()` once it knows the resource (multipart fields)."""
    return


RESOLVERS: dict[str, Resolver] = {
    "deferred": _deferred,
    "pipeline": lambda lk, p, b: lk.pipeline(p.get("ns"), p.get("layer"), p.get("name")),
    "table": lambda lk, p, b: lk.table(p.get("ns"), p.get("layer"), p.get("name")),
    "run": lambda lk, p, b: lk.run(p.get("run_id")),
    "zone": lambda lk, p, b: lk.zone(p.get("ns"), p.get("name")),
    "namespace": lambda lk, p, b: lk.namespace(p.get("ns") or p.get("name")),
    "schedule": lambda lk, p, b: lk.schedule(p.get("id") or p.get("schedule_id")),
    "file": lambda lk, p, b: lk.path(p.get("path")),
    "grant": lambda lk, p, b: lk.grant(p.get("grant_id") or p.get("id")),
    "body:namespace": lambda lk, p, b: lk.namespace(b.get("namespace") or "default"),
    "body:pipeline": lambda lk, p, b: lk.pipeline(b.get("namespace") or "default",
                                                  b.get("layer"), _q(b, "pipeline", "name")),
    "body:resource": lambda lk, p, b: lk.by_key(b.get("resource_type"), b.get("resource_id")),
    "query:resource": lambda lk, p, b: lk.by_key(b.get("resource_type"), b.get("resource_id")),
}
_BODY_RESOLVERS = ("body:namespace", "body:pipeline", "body:resource")


class AccessControl:
    """What the guard needs at request time; built once the database is up."""

    def __init__(self, *, auth: AuthProvider | None, authorizer: Authorizer | None,
                 lookup: ResourceLookup | None, api_key: str, sessions: SessionSigner) -> None:
        self.auth = auth
        self.authorizer = authorizer
        self.lookup = lookup
        self.api_key = api_key
        self.sessions = sessions
        self.open = auth is None and authorizer is None and not api_key

    async def authenticate(self, conn: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
        bearer = _bearer(conn)
        if bearer is not None:
            return await self._bearer(conn, bearer)
        cookie = read_cookie(conn.headers)
        session = self.sessions.load(cookie) if cookie else None
        if session is None:
            return None
        validate = getattr(self.auth, "validate_session", None)
        if validate is not None and not await validate(session.principal):
            return None
        if needs_refresh(session):
            conn.scope["state"][REFRESH_KEY] = True
        return session.principal

    async def _bearer(self, conn: ASGIConnection[Any, Any, Any, Any],
                      token: str) -> Principal:
        if self.api_key and hmac.compare_digest(token.encode(), self.api_key.encode()):
            return ANONYMOUS_ADMIN
        if self.auth is not None:
            found = await self.auth.authenticate(conn)  # type: ignore[arg-type]
            if found is not None:
                return found
        raise Unauthenticated("invalid bearer token")

    async def verify_token(self, token: str) -> Principal:
        """A pasted credential (UI login): RAT_API_KEY, or whatever the auth plugin accepts."""
        if self.api_key and hmac.compare_digest(token.encode(), self.api_key.encode()):
            return ANONYMOUS_ADMIN
        verify = getattr(self.auth, "verify", None)
        if verify is None:
            raise Unauthenticated("this credential is not accepted")
        found: Principal = await verify(token)
        return found

    async def check(self, principal: Principal, need: Permission, resource: Resource) -> None:
        """404 without read access, 403 with read but less than `need`."""
        if self.authorizer is None or principal.is_admin:
            return
        if not await self.authorizer.check(principal, "read", resource):
            raise NotFound(f"{resource.type.replace('_', ' ')} not found")
        if need != "read" and not await self.authorizer.check(principal, need, resource):
            raise Forbidden(f"{need} permission on this {resource.type.replace('_', ' ')} "
                            "is required")


def _bearer(conn: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    header = conn.headers.get("authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise Unauthenticated("Authorization must be 'Bearer <token>'")
    return value.strip()


def control(conn: ASGIConnection[Any, Any, Any, Any]) -> AccessControl | None:
    found: AccessControl | None = conn.app.state.get("access")
    return found


def principal(conn: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """The caller (the anonymous admin when no auth is configured)."""
    found: Principal | None = conn.scope.get("state", {}).get(PRINCIPAL_KEY)
    return found or ANONYMOUS_ADMIN


def user_id(conn: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The caller's id to record as owner/creator, or None without authentication."""
    ctl = control(conn)
    return None if ctl is None or ctl.open else principal(conn).user_id


async def read_scope(conn: ASGIConnection[Any, Any, Any, Any]) -> ReadScope | None:
    """What the caller may read, for `filtered` lists; None = everything (the common case)."""
    ctl = control(conn)
    who = principal(conn)
    if ctl is None or ctl.authorizer is None or who.is_admin:
        return None
    return await ctl.authorizer.read_scope(who)


async def require(conn: ASGIConnection[Any, Any, Any, Any], resource: Resource | None,
                  need: Permission) -> None:
    """For checks a guard cannot make before the handler runs (e.g. a multipart destination)."""
    ctl = control(conn)
    if ctl is not None and resource is not None:
        await ctl.check(principal(conn), need, resource)


async def resolve_path(conn: ASGIConnection[Any, Any, Any, Any], path: str) -> Resource | None:
    ctl = control(conn)
    if ctl is None or ctl.lookup is None:
        return None
    return await ctl.lookup.path(path)


async def guard(conn: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """The one enforcement point, installed on the app for every route."""
    ctl = control(conn)
    decl = declared(handler)
    if decl is None and conn.scope.get("method") == "OPTIONS":
        return
    if decl is None:
        if conn.url.path.startswith(_PUBLIC_PREFIXES):
            return
        log.error("route %s has no access declaration; refusing non-admins", conn.url.path)
        decl = Access(mark="SA")
    if ctl is None or ctl.open or decl.mark == "public":
        return
    who = await ctl.authenticate(conn)
    if who is None:
        raise Unauthenticated("authentication required")
    conn.scope["state"][PRINCIPAL_KEY] = who
    if decl.mark == "SA" and not who.is_admin:
        raise Forbidden("this endpoint needs the admin role")
    if decl.mark in PERMISSION and ctl.authorizer is not None and not who.is_admin:
        await _check_resource(conn, ctl, who, decl)


async def _check_resource(conn: ASGIConnection[Any, Any, Any, Any], ctl: AccessControl,
                          who: Principal, decl: Access) -> None:
    assert ctl.lookup is not None  # noqa: S101
    assert decl.resolver is not None  # noqa: S101
    body = await _body(conn) if decl.resolver in _BODY_RESOLVERS or decl.escalate else {}
    params = dict(conn.path_params)
    if decl.resolver == "query:resource":
        body = dict(conn.query_params)
    resource = await RESOLVERS[decl.resolver](ctl.lookup, params, body)
    if resource is None:
        return
    need = PERMISSION[decl.mark]
    if any(body.get(field) for field in decl.escalate):
        need = "admin"
    await ctl.check(who, need, resource)


async def _body(conn: ASGIConnection[Any, Any, Any, Any]) -> dict[str, Any]:
    """The JSON or form body, read once and cached for the handler.

    Anything unparsable is `{}` here: the handler reports the real error.
    """
    from litestar import Request

    from rat.web.body import raw_body

    if not isinstance(conn, Request):
        return {}
    if conn.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {k: v for k, v in (await conn.form()).items() if isinstance(v, str)}
    try:
        data = msgspec.json.decode(await raw_body(conn) or b"{}")
    except (msgspec.DecodeError, Invalid):
        return {}
    return data if isinstance(data, dict) else {}


def build_control(host: Any, db: Any, settings: Any, secret: str) -> AccessControl:
    """The AccessControl for a started runtime: plugins' auth/authorizer, RAT_API_KEY."""
    authorizer = host.slot("authorizer")
    return AccessControl(auth=host.slot("auth"), authorizer=authorizer,
                         lookup=ResourceLookup(db) if authorizer is not None else None,
                         api_key=settings.api_key, sessions=SessionSigner(secret))
