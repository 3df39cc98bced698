"""Explorer: published tables by namespace and layer."""

from itertools import groupby
from typing import Any

from litestar import Request, Response, get

from rat.web.access import access, read_scope
from rat.web.deps import int_param, services
from rat.web.templating import render

PAGE = 200


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


ROUTES = [explorer_page]
