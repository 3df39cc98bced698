"""Map every exception to the API error envelope (JSON) or an error page (HTML)."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response
from litestar.exceptions import HTTPException, NotFoundException
from litestar.response import Redirect
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR

from rat.core.errors import Busy, RateLimited, RatError, Unauthenticated, envelope
from rat.web.templating import wants_html

log = logging.getLogger(__name__)


def _response(request: Request[Any, Any, Any], status: int, message: str, code: str | None,
              extra: dict[str, Any] | None = None,
              headers: dict[str, str] | None = None) -> Response[Any]:
    if wants_html(request):
        from rat.web.templating import error_page

        return error_page(request, status, message, headers=headers)
    body = envelope(status, message, code)
    if extra:
        body.update(extra)
    return Response(body, status_code=status, headers=headers, media_type="application/json")


def rat_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, RatError)  # noqa: S101
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, RateLimited | Busy) \
        else None
    if isinstance(exc, Unauthenticated):
        if wants_html(request):
            return _to_login(request)
        headers = {"WWW-Authenticate": "Bearer"}
    return _response(request, exc.status, exc.message, exc.code, exc.extra, headers)


def _to_login(request: Request[Any, Any, Any]) -> Response[Any]:
    """Pages send an anonymous visitor to the login form (htmx: a client-side redirect)."""
    target = "/login?" + urlencode({"next": request.url.path})
    if request.headers.get("hx-request") == "true":
        return Response(b"", status_code=401, headers={"HX-Redirect": target})
    return Redirect(target, status_code=303)


def http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, HTTPException)  # noqa: S101
    status = exc.status_code
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else "request failed"
    if isinstance(exc, NotFoundException):
        message = "not found"
    if status == 405:
        message = "method not allowed"
    if status >= 500:
        log.error("HTTP %s on %s: %s", status, request.url.path, exc.detail)
        message = "internal error"
    return _response(request, status, message, None, headers=exc.headers)


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _response(request, HTTP_500_INTERNAL_SERVER_ERROR, "internal error", "INTERNAL")


def missing_file(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A storage object that is absent, or refused because its path runs through a link."""
    return _response(request, 404, "file not found", None)


HANDLERS = {RatError: rat_error, HTTPException: http_error, FileNotFoundError: missing_file,
            Exception: internal_error}
