"""Pipeline pages: the list with search and the create form."""

from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post

from rat.core.errors import RatError
from rat.pipelines.models import PipelineCreate
from rat.web.access import access, read_scope, user_id
from rat.web.deps import int_param, services
from rat.web.pages.forms import form_data, go, to_struct
from rat.web.templating import render

_EMPTY_FORM = {"namespace": "default", "layer": "bronze", "name": "", "type": "sql",
               "description": "", "merge_strategy": "full_refresh", "unique_key": ""}


@get("/pipelines", name="pages:pipelines", include_in_schema=False, opt=access("filtered"))
async def pipelines_page(request: Request[Any, Any, Any], search: str | None = None,
                         layer: str | None = None, offset: str | None = None) -> Response[str]:
    start = int_param(offset, "offset", 0)
    page = await services(request).pipelines.list(search=search or None, layer=layer or None,
                                                   limit=50, offset=start,
                                                   scope=await read_scope(request))
    query = urlencode({k: v for k, v in {"search": search, "layer": layer}.items() if v})
    return render(request, "pipelines/index.html", block="pipelines_table", page=page,
                  filters={"search": search, "layer": layer}, form=_EMPTY_FORM, error=None,
                  limit=50, offset=start, query_base=(query + "&") if query else "")


@post("/pipelines", name="pages:pipelines:create", include_in_schema=False,
      opt=access("W", "body:namespace"))
async def create_pipeline(request: Request[Any, Any, Any]) -> Response[Any]:
    data = {**_EMPTY_FORM, **await form_data(request)}
    body = to_struct({k: v for k, v in data.items() if v != ""}, PipelineCreate)
    try:
        created = await services(request).pipelines.create(body, owner=user_id(request))
    except RatError as exc:
        return render(request, "pipelines/index.html", block="create_form", status=422,
                      form=data, error=exc.message, page={"pipelines": [], "total": 0},
                      filters={}, limit=50, offset=0, query_base="")
    return go(request, f"/pipelines/{created.namespace}/{created.layer}/{created.name}?tab=code")


ROUTES = [pipelines_page, create_pipeline]
