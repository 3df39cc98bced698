"""The lineage graph endpoint."""

from typing import Any

from litestar import Request, get

from rat.lineage.models import LineageGraph
from rat.web.access import access, read_scope
from rat.web.deps import services


@get("/lineage", name="api:lineage", opt=access("filtered", errors=(400,)))
async def get_lineage(request: Request[Any, Any, Any],
                      namespace: str | None = None) -> LineageGraph:
    return await services(request).lineage.graph(namespace or None,
                                                 scope=await read_scope(request))


ROUTES = [get_lineage]
