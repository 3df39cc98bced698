"""Complete the OpenAPI document Litestar generates (/schema/openapi.json).

From the access declarations: JSON request bodies (handlers decode them with `read_json`, which
Litestar cannot see), the error responses each route can give in the RAT envelope, and the mark.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec
from litestar import Litestar

from rat.web.access import PERMISSION, Access, declared

_PARAM = re.compile(r"\{(\w+):\w+\}")
_DESCRIPTIONS = {
    400: "Invalid argument", 401: "Authentication required or failed (WWW-Authenticate: Bearer)",
    403: "Forbidden: read access but not the level needed, or not an admin",
    404: "Not found (also when the caller may not read it)", 409: "Conflict",
    413: "Body or upload too large", 415: "Unsupported media type", 422: "Validation failed",
    429: "Rate limited or capacity exhausted (Retry-After)", 501: "Feature plugin not enabled",
    503: "Dependency unavailable", 504: "Deadline exceeded"}


class ErrorBody(msgspec.Struct):
    code: str
    type: str
    message: str


class ErrorEnvelope(msgspec.Struct):
    """Every error response (api.md §2)."""

    error: ErrorBody


def error_codes(decl: Access) -> set[int]:
    codes = set(decl.errors)
    if decl.mark != "public":
        codes.add(401)
    if decl.mark in PERMISSION:
        codes.update((403, 404))
    if decl.mark == "SA":
        codes.add(403)
    if decl.body is not None:
        codes.update((400, 413, 415))
    return codes


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _document(app: Litestar) -> dict[str, Any]:
    # The plugin caches the dict it serves, so completing it here completes the served document.
    from litestar._openapi.plugin import OpenAPIPlugin

    doc: dict[str, Any] = app.plugins.get(OpenAPIPlugin).provide_openapi_schema()
    return doc


def _operations(app: Litestar) -> list[tuple[str, str, Access]]:
    out: list[tuple[str, str, Access]] = []
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            decl = declared(handler)
            if decl is None or not getattr(handler, "include_in_schema", True):
                continue
            path = _PARAM.sub(r"{\1}", route.path)
            out.extend((path, m.lower(), decl) for m in handler.http_methods
                       if m not in ("OPTIONS", "HEAD"))
    return out


def enrich(app: Litestar) -> None:
    doc = _document(app)
    bodies: set[Any] = {ErrorEnvelope}
    for path, method, decl in _operations(app):
        op = doc.get("paths", {}).get(path, {}).get(method)
        if op is None:
            continue
        op["x-rat-access"] = decl.mark
        if decl.body is not None:
            bodies.add(decl.body)
            op["requestBody"] = {"required": True, "content": {
                "application/json": {"schema": _ref(decl.body.__name__)}}}
        responses = op.setdefault("responses", {})
        for code in sorted(error_codes(decl)):
            responses[str(code)] = {"description": _DESCRIPTIONS.get(code, "Error"), "content": {
                "application/json": {"schema": _ref("ErrorEnvelope")}}}
    _, components = msgspec.json.schema_components(
        sorted(bodies, key=lambda t: t.__name__), ref_template="#/components/schemas/{name}")
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in components.items():
        schemas.setdefault(name, schema)


async def enrich_on_startup(app: Litestar) -> None:
    enrich(app)
