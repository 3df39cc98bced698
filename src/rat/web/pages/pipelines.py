"""Pipeline pages: the list with search, layer filter and sort, and the create dialog."""

from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post

from rat.core.errors import RatError
from rat.pipelines.models import PipelineCreate
from rat.web.access import access, read_scope, user_id
from rat.web.deps import int_param, services
from rat.web.pages.forms import form_data, go, to_struct
from rat.web.templating import render

PAGE = 50
SORTS = {"-created_at": "newest", "name": "name", "layer": "layer", "-updated_at": "updated"}
_EMPTY_FORM = {"namespace": "default", "layer": "bronze", "name": "", "type": "sql",
               "description": "", "merge_strategy": "full_refresh", "unique_key": ""}


async def _list_page(request: Request[Any, Any, Any], filters: dict[str, str], start: int,
                     **ctx: Any) -> Response[str]:
    sort = filters.get("sort") or "-created_at"
    page = await services(request).pipelines.list(
        search=filters.get("search") or None, layer=filters.get("layer") or None,
        namespace=filters.get("namespace") or None, sort=sort, limit=PAGE, offset=start,
        scope=await read_scope(request))
    query = urlencode({k: v for k, v in filters.items() if v})
    ctx = {"form": _EMPTY_FORM, "error": None, "show_form": False, **ctx}
    return render(request, "pipelines/index.html", page=page, filters=filters, sorts=SORTS,
                  limit=PAGE, offset=start, query_base=(query + "&") if query else "", **ctx)


@get("/pipelines", name="pages:pipelines", include_in_schema=False, opt=access("filtered"))
async def pipelines_page(request: Request[Any, Any, Any], search: str | None = None,
                         layer: str | None = None, namespace: str | None = None,
                         sort: str | None = None, offset: str | None = None,
                         new: str | None = None) -> Response[str]:
    filters = {"search": search or "", "layer": layer or "", "namespace": namespace or "",
               "sort": sort or ""}
    return await _list_page(request, filters, int_param(offset, "offset", 0),
                            block="pipelines_table", show_form=new == "1")


@post("/pipelines", name="pages:pipelines:create", include_in_schema=False,
      opt=access("W", "body:namespace"))
async def create_pipeline(request: Request[Any, Any, Any]) -> Response[Any]:
    """Create with starter files, then open the code tab; errors keep what was typed."""
    data = {**_EMPTY_FORM, **await form_data(request)}
    try:
        body = to_struct({k: v for k, v in data.items() if v != ""}, PipelineCreate)
        created = await services(request).pipelines.create(body, owner=user_id(request))
    except RatError as exc:
        return await _list_page(request, dict.fromkeys(("search", "layer", "namespace", "sort"), ""),
                                0, block="create_form", status=422, form=data,
                                error=exc.message, show_form=True)
    return go(request, f"/pipelines/{created.namespace}/{created.layer}/{created.name}?tab=code")


ROUTES = [pipelines_page, create_pipeline]
