"""The lineage graph endpoint."""

from typing import Any

from litestar import Request, get

from rat.lineage.models import LineageGraph
from rat.web.deps import services


@get("/lineage", name="api:lineage")
async def get_lineage(request: Request[Any, Any, Any],
                      namespace: str | None = None) -> LineageGraph:
    return await services(request).lineage.graph(namespace or None)


ROUTES = [get_lineage]
