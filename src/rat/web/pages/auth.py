"""Login and logout pages.

A pasted API token, identity-provider JWT or RAT_API_KEY becomes a signed session cookie (see
rat.web.session). When the auth plugin offers an interactive login (rat-auth with an OIDC
`client_id`), "Log in with <issuer>" runs the authorization code flow with PKCE: the plugin builds
the provider's URL and validates what comes back; this module keeps the flow (state, nonce,
verifier) in a signed cookie scoped to /login/oidc for ten minutes and sets the same session
cookie as the token form. Every failure is shown on the login page, never as a 500.
"""

import time
from typing import Any

from litestar import Request, Response, get, post
from litestar.datastructures import Cookie
from litestar.response import Redirect

from rat.core.errors import RatError, Unauthenticated
from rat.plugins.protocols import LOGIN_FLOW_SECONDS, InteractiveLogin, LoginFlow
from rat.web.access import AccessControl, access, control
from rat.web.deps import services
from rat.web.pages.forms import form_data
from rat.web.pages.pipeline_triggers import base_url
from rat.web.session import COOKIE, cookie_header, read_cookie
from rat.web.templating import render

FLOW_COOKIE = "rat_login_flow"
FLOW_PATH = "/login/oidc"
CALLBACK_PATH = "/login/oidc/callback"


def _safe_next(value: str | None) -> str:
    """Only same-site paths: `//host` and absolute URLs would be an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


def _interactive(ctl: AccessControl) -> InteractiveLogin | None:
    found: InteractiveLogin | None = getattr(ctl.auth, "interactive", None)
    return found


def _page(request: Request[Any, Any, Any], ctl: AccessControl, next_url: str,
          error: RatError | None = None) -> Response[Any]:
    login = _interactive(ctl)
    return render(request, "auth/login.html", status=error.status if error else 200,
                  next_url=next_url, error=error.message if error else None,
                  oidc_label=login.label if login else None)


@get("/login", name="pages:login", include_in_schema=False, opt=access("public"))
async def login_page(request: Request[Any, Any, Any], next: str | None = None) -> Response[Any]:
    ctl = control(request)
    if ctl is None or ctl.open:
        return Redirect("/", status_code=303)
    return _page(request, ctl, _safe_next(next))


@post("/login", name="pages:login:submit", include_in_schema=False, opt=access("public"))
async def login(request: Request[Any, Any, Any]) -> Response[Any]:
    ctl = control(request)
    data = await form_data(request)
    target = _safe_next(data.get("next"))
    if ctl is None or ctl.open:
        return Redirect("/", status_code=303)
    try:
        who = await ctl.verify_token(data.get("token", "").strip())
    except RatError as exc:
        return _page(request, ctl, target, exc)
    cookie = cookie_header(ctl.sessions.dump(who), secure=request.url.scheme == "https")
    return Redirect(target, status_code=303, headers={"Set-Cookie": cookie})


def _flow_cookie(request: Request[Any, Any, Any], value: str, max_age: int) -> Cookie:
    return Cookie(key=FLOW_COOKIE, value=value, path=FLOW_PATH, max_age=max_age, httponly=True,
                  samesite="lax", secure=request.url.scheme == "https")


@get(FLOW_PATH, name="pages:login:oidc", include_in_schema=False, opt=access("public"))
async def oidc_start(request: Request[Any, Any, Any], next: str | None = None) -> Response[Any]:
    """Send the browser to the identity provider with a fresh state, nonce and PKCE challenge."""
    ctl = control(request)
    login = _interactive(ctl) if ctl is not None else None
    if ctl is None or login is None:
        return Redirect("/login", status_code=303)
    target = _safe_next(next)
    redirect_uri = base_url(request, services(request)).rstrip("/") + CALLBACK_PATH
    try:
        url, flow = await login.begin(redirect_uri, target)
    except RatError as exc:
        return _page(request, ctl, target, exc)
    sealed = ctl.sessions.derive("login-flow").seal(flow)
    return Redirect(url, status_code=303,
                    cookies=[_flow_cookie(request, sealed, LOGIN_FLOW_SECONDS)])


@get(CALLBACK_PATH, name="pages:login:oidc:callback", include_in_schema=False,
     opt=access("public"))
async def oidc_callback(request: Request[Any, Any, Any]) -> Response[Any]:
    """The provider's redirect: finish the login, or say on the login page why it failed."""
    ctl = control(request)
    login = _interactive(ctl) if ctl is not None else None
    if ctl is None or login is None:
        return Redirect("/login", status_code=303)
    cleared = [_flow_cookie(request, "", 0)]
    raw = read_cookie(request.headers, FLOW_COOKIE)
    flow = ctl.sessions.derive("login-flow").unseal(raw, LoginFlow) if raw else None
    if flow is None or time.time() - flow.started > LOGIN_FLOW_SECONDS:
        expired = Unauthenticated("this login expired or was already used; start it again")
        return _with_cookies(_page(request, ctl, "/", expired), cleared)
    try:
        who = await login.finish(flow, dict(request.query_params))
    except RatError as exc:
        return _with_cookies(_page(request, ctl, flow.next_url, exc), cleared)
    session = cookie_header(ctl.sessions.dump(who), secure=request.url.scheme == "https")
    return Redirect(flow.next_url, status_code=303, headers={"Set-Cookie": session},
                    cookies=cleared)


def _with_cookies(response: Response[Any], cookies: list[Cookie]) -> Response[Any]:
    for cookie in cookies:
        response.set_cookie(cookie)
    return response


@post("/logout", name="pages:logout", include_in_schema=False, opt=access("public"))
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    expired = f"{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
    return Redirect("/login", status_code=303, headers={"Set-Cookie": expired})


ROUTES = [login_page, login, oidc_start, oidc_callback, logout]
