"""Table endpoints."""

from typing import Any

from litestar import Request, get

from rat.tables.models import TablePage
from rat.web.access import access, read_scope
from rat.web.deps import int_param, services


@get("/tables", name="api:tables:list", opt=access("filtered", errors=(400,)))
async def list_tables(request: Request[Any, Any, Any], namespace: str | None = None,
                      layer: str | None = None, search: str | None = None,
                      limit: str | None = None, offset: str | None = None) -> TablePage:
    return await services(request).tables.list(
        namespace=namespace or None, layer=layer or None, search=search or None,
        limit=int_param(limit, "limit", 50), offset=int_param(offset, "offset", 0),
        scope=await read_scope(request))


ROUTES = [list_tables]
