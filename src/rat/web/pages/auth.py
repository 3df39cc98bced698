"""Login and logout pages.

A pasted API token, identity-provider JWT or RAT_API_KEY becomes a signed session cookie (see
rat.web.session).
"""

from typing import Any

from litestar import Request, Response, get, post
from litestar.response import Redirect

from rat.core.errors import RatError
from rat.web.access import access, control
from rat.web.pages.forms import form_data
from rat.web.session import COOKIE, cookie_header
from rat.web.templating import render


def _safe_next(value: str | None) -> str:
    """Only same-site paths: `//host` and absolute URLs would be an open redirect."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


@get("/login", name="pages:login", include_in_schema=False, opt=access("public"))
async def login_page(request: Request[Any, Any, Any], next: str | None = None) -> Response[Any]:
    ctl = control(request)
    if ctl is None or ctl.open:
        return Redirect("/", status_code=303)
    return render(request, "auth/login.html", next_url=_safe_next(next), error=None)


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
        return render(request, "auth/login.html", status=401, next_url=target,
                      error=exc.message)
    cookie = cookie_header(ctl.sessions.dump(who), secure=request.url.scheme == "https")
    return Redirect(target, status_code=303, headers={"Set-Cookie": cookie})


@post("/logout", name="pages:logout", include_in_schema=False, opt=access("public"))
async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
    expired = f"{COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
    return Redirect("/login", status_code=303, headers={"Set-Cookie": expired})


ROUTES = [login_page, login, logout]
