"""Explorer: published tables by namespace and layer, and one table's page.

The table page has the schema with editable descriptions, a preview (also at an older snapshot:
time travel) and the snapshot history with links to the runs that wrote them.
"""

from itertools import groupby
from typing import Any

import msgspec
from litestar import Request, Response, get, post

from rat.core.errors import RatError
from rat.engine.query import QueryOutput
from rat.tables.models import TableMetadataUpdate
from rat.web.access import access, read_scope
from rat.web.deps import Services, int_param, services
from rat.web.grid import exact_decimals
from rat.web.pages.forms import form_data, go
from rat.web.templating import is_fragment, render

PAGE = 200
PREVIEW_ROWS = 50
T = "/explorer/{ns:str}/{layer:str}/{name:str}"


@get("/explorer", name="pages:explorer", include_in_schema=False, opt=access("filtered"))
async def explorer_page(request: Request[Any, Any, Any], namespace: str | None = None,
                        layer: str | None = None, search: str | None = None,
                        offset: str | None = None) -> Response[str]:
    start = int_param(offset, "offset", 0)
    page = await services(request).tables.list(namespace=namespace or None, layer=layer or None,
                                                search=search or None, limit=PAGE, offset=start,
                                                scope=await read_scope(request))
    groups = [(ns, [(lay, list(ts)) for lay, ts in groupby(items, key=lambda t: t.layer)])
              for ns, items in groupby(page.tables, key=lambda t: t.namespace)]
    return render(request, "explorer/index.html", block="tables", page=page, groups=groups,
                  filters={"namespace": namespace or "", "layer": layer or "",
                           "search": search or ""}, limit=PAGE, offset=start)


async def _preview(svc: Services, ns: str, layer: str, name: str,
                   snapshot: int | None) -> tuple[QueryOutput | None, str | None]:
    try:
        raw = await svc.tables.preview(ns, layer, name, limit=PREVIEW_ROWS, snapshot_id=snapshot)
    except RatError as exc:
        return None, exc.message
    result = msgspec.json.decode(raw, type=QueryOutput)
    exact_decimals(raw, ((c.name, c.type) for c in result.columns), result.rows)
    return result, None


async def _table(request: Request[Any, Any, Any], ns: str, layer: str, name: str, *,
                 block: str | None = None, status: int = 200,
                 snapshot: int | None = None, **override: Any) -> Response[str]:
    svc = services(request)
    table = await svc.tables.detail(ns, layer, name)
    preview, preview_error = await _preview(svc, ns, layer, name, snapshot)
    snapshots = await svc.tables.snapshots(ns, layer, name, limit=20)
    form = {"description": table.description, "owner": table.owner or "",
            **{f"col:{c.name}": c.description or "" for c in table.columns}}
    ctx = {"table": table, "preview": preview, "preview_error": preview_error,
           "snapshots": snapshots, "snapshot": snapshot, "form": form, "meta_error": None,
           "meta_saved": False, "tbase": f"/explorer/{ns}/{layer}/{name}", **override}
    return render(request, "explorer/table.html", block=block, status=status, **ctx)


@get(T, name="pages:table", include_in_schema=False, opt=access("R", "table"))
async def table_page(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                     snapshot: str | None = None) -> Response[str]:
    """The table; `?snapshot=` previews it as it was at that snapshot (time travel)."""
    at = int_param(snapshot, "snapshot", 0) if snapshot else None
    return await _table(request, ns, layer, name, block="table_preview", snapshot=at)


@post(T + "/metadata", name="pages:table:metadata", include_in_schema=False,
      opt=access("W", "table"))
async def save_metadata(request: Request[Any, Any, Any], ns: str, layer: str,
                        name: str) -> Response[Any]:
    form = await form_data(request)
    body = TableMetadataUpdate(
        description=form.get("description", ""), owner=form.get("owner") or None,
        column_descriptions={k[4:]: v for k, v in form.items() if k.startswith("col:")})
    try:
        await services(request).tables.update_metadata(ns, layer, name, body)
    except RatError as exc:
        return await _table(request, ns, layer, name, block="table_meta", status=422,
                            form=form, meta_error=exc.message)
    if not is_fragment(request):
        return go(request, f"/explorer/{ns}/{layer}/{name}")
    return await _table(request, ns, layer, name, block="table_meta", meta_saved=True)


ROUTES = [explorer_page, table_page, save_metadata]
