"""Run pages: history with a status filter that refreshes while runs are active."""

from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get

from rat.web.access import access, read_scope
from rat.web.deps import int_param, services
from rat.web.templating import render


@get("/runs", name="pages:runs", include_in_schema=False, opt=access("filtered"))
async def runs_page(request: Request[Any, Any, Any], status: str | None = None,
                    pipeline: str | None = None, offset: str | None = None) -> Response[str]:
    start = int_param(offset, "offset", 0)
    page = await services(request).runs.list(status=status or None, pipeline=pipeline or None,
                                             limit=50, offset=start,
                                             scope=await read_scope(request))
    active = any(r.status in ("pending", "running") for r in page.runs)
    query = urlencode({k: v for k, v in {"status": status, "pipeline": pipeline}.items() if v})
    return render(request, "runs/index.html", block="runs_table", page=page,
                  filters={"status": status}, active=active, limit=50, offset=start,
                  query_base=(query + "&") if query else "")


ROUTES = [runs_page]
