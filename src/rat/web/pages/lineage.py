"""Lineage: zones, pipelines and tables of a namespace as a DAG.

Laid out and drawn as SVG on the server; every node links to its page (no JavaScript needed).
"""

from typing import Any

from litestar import Request, Response, get

from rat.lineage.models import LineageNode
from rat.web.access import access, read_scope
from rat.web.deps import services
from rat.web.graph import GraphNode, layout
from rat.web.templating import render

_HREF = {"pipeline": "/pipelines/{ns}/{layer}/{name}", "table": "/explorer/{ns}/{layer}/{name}",
         "landing_zone": "/landing/{ns}/{name}"}


def graph_node(n: LineageNode) -> GraphNode:
    label = f"{n.layer}.{n.name}" if n.layer else n.name
    detail = {"pipeline": "pipeline", "table": "table", "landing_zone": "landing zone"}.get(
        n.type, n.type)
    if n.table_stats is not None:
        detail += f" · {n.table_stats.row_count} rows"
    if n.landing_info is not None:
        detail += f" · {n.landing_info.file_count} files"
    if n.quality is not None and n.quality.total:
        detail += f" · tests {n.quality.passed}/{n.quality.total}"
    return GraphNode(id=n.id, label=label, kind=n.type, detail=detail,
                     status=n.latest_run.status if n.latest_run else "",
                     href=_HREF.get(n.type, "/").format(ns=n.namespace, layer=n.layer,
                                                        name=n.name))


@get("/lineage", name="pages:lineage", include_in_schema=False, opt=access("filtered"))
async def lineage_page(request: Request[Any, Any, Any],
                       namespace: str | None = None) -> Response[str]:
    ns = namespace or "default"
    graph = await services(request).lineage.graph(ns, await read_scope(request))
    drawn = layout([graph_node(n) for n in graph.nodes],
                   [(e.source, e.target, e.type) for e in graph.edges])
    return render(request, "lineage/index.html", graph=drawn, namespace=ns,
                  node_count=len(graph.nodes))


ROUTES = [lineage_page]
