"""Platform endpoints: features, me, plugins, tokens, sharing, audit, and the 501 stubs.

Contract: api.md §7, §17, §18, §19. Pro endpoints always exist and answer 501 while their
plugin is off, so the route table (and its access test) does not depend on the configuration.
"""

import re
from datetime import datetime
from typing import Any

import msgspec
from litestar import Request, Response, delete, get, post, put
from litestar.handlers import HTTPRouteHandler

from rat.core.errors import Forbidden, Invalid, NotFound, NotImplementedFeature, Unauthenticated
from rat.core.ids import parse_uuid
from rat.core.timefmt import parse_rfc3339
from rat.plugins.builtin.audit import AuditPage
from rat.plugins.builtin.auth import NewToken, TokenPage
from rat.plugins.builtin.sharing import Share, ShareCreate, SharePage, Transfer, TransferResult
from rat.plugins.host import PluginEntry, PluginHost, RunnerPlugin
from rat.plugins.protocols import Resource
from rat.web.access import access, control, principal, require
from rat.web.body import read_json
from rat.web.deps import int_param


def host(request: Request[Any, Any, Any]) -> PluginHost:
    found: PluginHost = request.app.state["plugins"]
    return found


def _plugin(request: Request[Any, Any, Any], name: str, what: str) -> Any:
    h = host(request)
    if not h.enabled(name):
        raise NotImplementedFeature(f"{what} needs the {name} plugin, which is not enabled")
    return h.plugins[name].obj


@get("/features", name="api:features", opt=access("public"), sync_to_thread=False)
def features(request: Request[Any, Any, Any]) -> dict[str, Any]:
    return host(request).features()


class Me(msgspec.Struct, kw_only=True):
    user_id: str
    email: str
    display_name: str
    roles: list[str]


@get("/me", name="api:me", opt=access("any", errors=(401,)))
async def me(request: Request[Any, Any, Any]) -> Me:
    ctl = control(request)
    if ctl is None or ctl.open:
        raise Unauthenticated("no authentication is configured")
    who = principal(request)
    return Me(user_id=who.user_id, email=who.email, display_name=who.display_name,
              roles=list(who.roles))


@get("/plugins", name="api:plugins:list", opt=access("any"), sync_to_thread=False)
def list_plugins(request: Request[Any, Any, Any], status: str | None = None,
                 kind: str | None = None) -> list[PluginEntry]:
    return [e for e in host(request).entries()
            if (not status or e.status == status) and (not kind or e.kind == kind)]


@get("/plugins/{plugin_name:str}", name="api:plugins:get", opt=access("any", errors=(404,)),
     sync_to_thread=False)
def get_plugin(request: Request[Any, Any, Any], plugin_name: str) -> PluginEntry:
    for entry in host(request).entries():
        if entry.name == plugin_name:
            return entry
    raise NotFound(f"plugin {plugin_name!r} not found")


@get("/runner/plugins", name="api:runner:plugins", opt=access("any"), sync_to_thread=False)
def runner_plugins(request: Request[Any, Any, Any]) -> list[RunnerPlugin]:
    return host(request).runner_plugins()


class TokenCreate(msgspec.Struct, kw_only=True):
    name: str
    expires_at: str | None = None
    user_id: str | None = None
    roles: list[str] | None = None


def _tokens(request: Request[Any, Any, Any]) -> Any:
    provider = _plugin(request, "rat-auth", "API tokens").provider
    if provider is None or provider.tokens is None or not provider.config.tokens:
        raise NotImplementedFeature("API tokens are off (rat-auth mode is oidc)")
    return provider.tokens


@get("/tokens", name="api:tokens:list", opt=access("any", errors=(501,)))
async def list_tokens(request: Request[Any, Any, Any], user_id: str | None = None,
                      limit: str | None = None, offset: str | None = None) -> TokenPage:
    store = _tokens(request)
    who = principal(request)
    if user_id and user_id != who.user_id and not who.is_admin:
        raise Forbidden("only admins list other users' tokens")
    owner = (user_id or None) if who.is_admin else who.user_id
    page: TokenPage = await store.list(owner, int_param(limit, "limit", 50),
                                       int_param(offset, "offset", 0))
    return page


def _expiry(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return parse_rfc3339(text)
    except ValueError:
        raise Invalid("expires_at must be an RFC 3339 timestamp") from None


@post("/tokens", name="api:tokens:create",
      opt=access("any", body=TokenCreate, errors=(400, 403, 501)))
async def create_token(request: Request[Any, Any, Any]) -> Response[NewToken]:
    store = _tokens(request)
    body = await read_json(request, TokenCreate)
    who = principal(request)
    if (body.user_id not in (None, who.user_id) or body.roles is not None) and not who.is_admin:
        raise Forbidden("only admins create tokens for other users or with roles")
    user = body.user_id or who.user_id
    # A token never carries more than asked for: own roles for oneself, none for others.
    own = list(who.roles) if user == who.user_id else []
    roles = body.roles if body.roles is not None else own
    token = await store.create(user_id=user, name=body.name,
                               roles=roles, expires_at=_expiry(body.expires_at))
    return Response(token, status_code=201)


@delete("/tokens/{token_id:str}", name="api:tokens:delete", status_code=204,
        opt=access("any", errors=(404, 501)))
async def delete_token(request: Request[Any, Any, Any], token_id: str) -> None:
    store = _tokens(request)
    who = principal(request)
    await store.revoke(parse_uuid(token_id, "id"), None if who.is_admin else who.user_id)


def _sharing(request: Request[Any, Any, Any]) -> Any:
    return host(request).slot("authorizer") if _plugin(request, "rat-sharing", "sharing") else None


async def _resource(request: Request[Any, Any, Any], kind: str, rid: str) -> Resource:
    ctl = control(request)
    if kind not in ("namespace", "pipeline", "landing_zone"):
        raise Invalid("resource_type must be namespace, pipeline or landing_zone")
    if not rid:
        raise Invalid("resource_id is required")
    found = await ctl.lookup.by_key(kind, rid) if ctl is not None and ctl.lookup else None
    if found is None:
        raise NotFound(f"{kind.replace('_', ' ')} {rid!r} not found")
    return found


@post("/sharing", name="api:sharing:create",
      opt=access("A", "body:resource", body=ShareCreate, errors=(400, 403, 404, 501)))
async def create_share(request: Request[Any, Any, Any]) -> Response[Share]:
    sharing = _sharing(request)
    body = await read_json(request, ShareCreate)
    resource = await _resource(request, body.resource_type, body.resource_id)
    share = await sharing.grant(resource, body, principal(request).user_id)
    return Response(share, status_code=201)


@get("/sharing", name="api:sharing:list", opt=access("A", "query:resource",
                                                     errors=(400, 403, 404, 501)))
async def list_shares(request: Request[Any, Any, Any], resource_type: str | None = None,
                      resource_id: str | None = None) -> SharePage:
    sharing = _sharing(request)
    resource = await _resource(request, resource_type or "", resource_id or "")
    page: SharePage = await sharing.shares(resource)
    return page


@delete("/sharing/{grant_id:str}", name="api:sharing:delete", status_code=204,
        opt=access("A", "grant", errors=(400, 403, 404, 501)))
async def delete_share(request: Request[Any, Any, Any], grant_id: str) -> None:
    sharing = _sharing(request)
    await sharing.revoke(parse_uuid(grant_id, "grantID"))


@post("/sharing/transfer", name="api:sharing:transfer", status_code=200,
      opt=access("A", "body:resource", body=Transfer, errors=(400, 403, 404, 501)))
async def transfer(request: Request[Any, Any, Any]) -> TransferResult:
    sharing = _sharing(request)
    body = await read_json(request, Transfer)
    resource = await _resource(request, body.resource_type, body.resource_id)
    who = principal(request)
    if not who.is_admin and resource.owner != who.user_id:
        await require(request, resource, "read")
        raise Forbidden("only the owner or an admin can transfer ownership")
    result: TransferResult = await sharing.transfer(resource, body.to_user_id or body.new_owner
                                                    or "")
    return result


@get("/audit", name="api:audit", opt=access("SA", errors=(400, 501)))
async def audit(request: Request[Any, Any, Any], user_id: str | None = None,
                action: str | None = None, since: str | None = None, until: str | None = None,
                limit: str | None = None, offset: str | None = None) -> AuditPage:
    log = _plugin(request, "rat-audit", "the audit log").log
    page: AuditPage = await log.list(user_id=user_id, action=action, since=since, until=until,
                                     limit=int_param(limit, "limit", 50),
                                     offset=int_param(offset, "offset", 0))
    return page


_NOT_PROVIDED = {
    "plugins are configured in rat.yaml or RAT_PLUGINS and loaded at start": [
        ("PUT", "/plugins/{plugin_name:str}/enable"), ("PUT", "/plugins/{plugin_name:str}/disable"),
        ("PUT", "/plugins/{plugin_name:str}/config"), ("DELETE", "/plugins/{plugin_name:str}")],
    "plugin sources and policies are not provided": [
        (m, p) for p in ("/plugin-sources", "/plugin-sources/{rest:path}", "/plugin-policies",
                         "/plugin-policies/{rest:path}") for m in ("GET", "POST", "PUT", "DELETE")],
    "no permissions, identity or cloud credentials provider ships with RAT": [
        (m, p) for p in ("/permissions/{rest:path}", "/identity/{rest:path}",
                         "/cloud/credentials") for m in ("GET", "POST", "PUT", "DELETE")],
}


def _not_provided(method: str, path: str, reason: str) -> HTTPRouteHandler:
    async def handler() -> None:
        raise NotImplementedFeature(reason)

    decorator = {"GET": get, "POST": post, "PUT": put, "DELETE": delete}[method]
    name = f"api:not-provided:{method}:{path}"
    operation = "NotProvided" + method.title() + re.sub(r"[^A-Za-z]+", " ", path).title()
    route: HTTPRouteHandler = decorator(
        path, name=name, opt=access("public", errors=(501,)), status_code=501,
        operation_id=operation.replace(" ", ""))(handler)
    return route


ROUTES = [features, me, list_plugins, get_plugin, runner_plugins, list_tokens, create_token,
          delete_token, create_share, list_shares, delete_share, transfer, audit,
          *(_not_provided(m, p, reason) for reason, items in _NOT_PROVIDED.items()
            for m, p in items)]
