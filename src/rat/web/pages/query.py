"""Query console: editor with schema autocomplete, Ctrl-Enter, typed result grid, downloads."""

from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.response import Stream

from rat.core.errors import Invalid, RatError
from rat.engine.query import QueryOutput
from rat.plugins.protocols import ReadScope
from rat.query.models import FORMATS, QueryRequest
from rat.web.access import access, read_scope
from rat.web.deps import Services, int_param, services
from rat.web.grid import exact_decimals
from rat.web.pages.forms import form_data
from rat.web.templating import render

# The grid shows at most this many rows; larger results are for the downloads.
GRID_ROWS = 1000


async def schema(svc: Services, namespace: str,
                 scope: ReadScope | None) -> dict[str, list[list[str]]]:
    """`layer.name` (this namespace) and `ns.layer.name` → [[column, type], …] of published tables."""
    out: dict[str, list[list[str]]] = {}
    for t in (await svc.tables.schema(scope=scope)).tables:
        name = f"{t.layer}.{t.name}" if t.namespace == namespace else \
            f"{t.namespace}.{t.layer}.{t.name}"
        out[name] = [[c.name, c.type] for c in t.columns]
    return dict(sorted(out.items()))


async def _page(request: Request[Any, Any, Any], form: dict[str, str], *, result: Any = None,
                error: str | None = None, status: int = 200) -> Response[str]:
    namespace = form.get("namespace") or "default"
    tables = await schema(services(request), namespace, await read_scope(request))
    return render(request, "query/index.html", block="results", status=status, form=form,
                  schema=tables, result=result, error=error, grid_rows=GRID_ROWS)


@get("/query", name="pages:query", include_in_schema=False, opt=access("filtered"))
async def query_page(request: Request[Any, Any, Any], sql: str | None = None,
                     namespace: str | None = None) -> Response[str]:
    return await _page(request, {"sql": sql or "", "namespace": namespace or "default",
                                 "limit": "1000"})


@post("/query", name="pages:query:run", include_in_schema=False, opt=access("filtered"))
async def run_query(request: Request[Any, Any, Any]) -> Response[str]:
    """Run the console statement; errors (refused statement, DuckDB message) show in the grid."""
    form = {"sql": "", "namespace": "default", "limit": "1000", **await form_data(request)}
    try:
        body = QueryRequest(sql=form["sql"], namespace=form["namespace"],
                            limit=int_param(form["limit"], "limit", 1000))
        raw = await services(request).query.run(body, await read_scope(request))
        result = msgspec.json.decode(raw, type=QueryOutput)
        exact_decimals(raw, ((c.name, c.type) for c in result.columns), result.rows)
    except RatError as exc:
        return await _page(request, form, error=exc.message, status=422)
    return await _page(request, form, result=result)


@post("/query/download", name="pages:query:download", include_in_schema=False, status_code=200,
      opt=access("filtered"))
async def download(request: Request[Any, Any, Any]) -> Response[Any]:
    """The whole result as a streamed CSV / NDJSON / Arrow file (errors: the page, SQL kept)."""
    form = {"sql": "", "namespace": "default", "limit": "1000", "format": "csv",
            **await form_data(request)}
    try:
        if form["format"] not in FORMATS:
            raise Invalid(f"format must be one of {', '.join(FORMATS)}")
        body = QueryRequest(sql=form["sql"], namespace=form["namespace"], format=form["format"],
                            limit=services(request).settings.query_export_max_rows)
        result = await services(request).query.download(body, form["format"],
                                                        await read_scope(request))
    except RatError as exc:
        return await _page(request, form, error=exc.message, status=422)
    return Stream(result.chunks, media_type=result.media_type, headers={
        "Content-Disposition": f'attachment; filename="{result.filename}"',
        "Cache-Control": "no-store"})


ROUTES = [query_page, run_query, download]
