"""HTML rendering: one Jinja environment (autoescape, StrictUndefined) and the page/fragment choice."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jinja2
import msgspec
from jinja2_fragments import render_blocks
from litestar import Request, Response
from litestar.datastructures import State
from litestar.utils.scope.state import ScopeState

from rat import __version__
from rat.config import TEMPLATES_DIR
from rat.web.access import principal

_CSP = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'")


def _duration(ms: int | None) -> str:
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms} ms"
    seconds = ms / 1000
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def _filesize(n: int | None) -> str:
    if n is None:
        return "–"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def _dt(value: datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _ago(value: datetime | None) -> str:
    if value is None:
        return "never"
    seconds = int((datetime.now(UTC) - value).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit} ago"
    return f"{max(seconds, 0)} s ago"


MACRO_FILES = ("_macros/ui.html", "_macros/pipeline.html", "_macros/editor.html",
               "_macros/triggers.html")


_CELL_JSON = msgspec.json.Encoder(decimal_format="number")


def _cell(value: Any) -> str:
    """A result cell as text: NULL, JSON for nested values and booleans, str() otherwise.

    DECIMAL values (see rat.web.grid) print with their exact scale: 10.50, 0.0000, never 0E-4.
    """
    if value is None:
        return "NULL"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, dict | list | bool):
        return _CELL_JSON.encode(value).decode()
    return str(value)


def _config_value(value: Any) -> str:
    """A config value as the user writes it: `false`, `id, region`, JSON for structured keys."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ", ".join(value)
    if isinstance(value, str):
        return value
    return _CELL_JSON.encode(value).decode()


def _sample_columns(rows: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Grid columns for untyped sample rows (quality failures): the keys of the first row."""
    return [{"name": k, "type": ""} for k in (rows[0] if rows else {})]


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(duration=_duration, filesize=_filesize, dt=_dt, ago=_ago, cell=_cell, config_value=_config_value,
                       sample_columns=_sample_columns)
    env.globals.update(version=__version__)
    # Macros are globals, not per-template imports: a block rendered alone (an htmx fragment)
    # does not run its template's top-level `{% from … import %}` lines.
    for name in MACRO_FILES:
        module = env.get_template(name).module
        env.globals.update({k: getattr(module, k) for k in dir(module) if not k.startswith("_")})
    return env


ENV = _environment()


def wants_html(request: Request[Any, Any, Any]) -> bool:
    path = request.url.path
    if path.startswith(("/api/", "/health", "/metrics", "/static/", "/schema")):
        return False
    return "text/html" in request.headers.get("accept", "") or request.headers.get("hx-request") == "true"


def is_fragment(request: Request[Any, Any, Any]) -> bool:
    h = request.headers
    return h.get("hx-request") == "true" and h.get("hx-boosted") != "true" and \
        h.get("hx-history-restore-request") != "true"


def csrf_token(request: Request[Any, Any, Any]) -> str:
    token = ScopeState.from_scope(request.scope).csrf_token
    return token if isinstance(token, str) else ""


def _context(request: Request[Any, Any, Any], nonce: str, ctx: dict[str, Any]) -> dict[str, Any]:
    state: State = request.app.state
    return {"request": request, "csrf_token": csrf_token(request), "nonce": nonce,
            "path": request.url.path, "features": state.get("features", {}),
            "user": principal(request), **ctx}


def render(request: Request[Any, Any, Any], template: str, *,
           block: str | tuple[str, ...] | None = None, status: int = 200,
           headers: dict[str, str] | None = None, **ctx: Any) -> Response[str]:
    """Full page for normal navigation; only `block` for an htmx request that targets it.

    `block` may name several blocks (e.g. a form plus its `oob_*` companions).
    """
    nonce = secrets.token_urlsafe(16)
    context = _context(request, nonce, ctx)
    if block is not None and is_fragment(request):
        html = render_blocks(ENV, template, (block,) if isinstance(block, str) else block, context)
    else:
        html = ENV.get_template(template).render(context)
    out_headers = {"Content-Security-Policy": _CSP.format(nonce=nonce), "Vary": "HX-Request",
                   **(headers or {})}
    return Response(html, status_code=status, media_type="text/html", headers=out_headers)


def error_page(request: Request[Any, Any, Any], status: int, message: str, *,
               headers: dict[str, str] | None = None) -> Response[str]:
    if is_fragment(request):
        return render(request, "errors/_toast.html", status=status, headers=headers,
                      message=message, status_code=status)
    return render(request, "errors/error.html", status=status, headers=headers,
                  message=message, status_code=status)
