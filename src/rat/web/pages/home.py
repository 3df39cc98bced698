"""The dashboard."""

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, Response, get

from rat.runs.models import Run
from rat.web.access import access, read_scope
from rat.web.deps import services
from rat.web.templating import render


class Dashboard(msgspec.Struct, kw_only=True):
    pipeline_count: int
    table_count: int
    runs_24h: dict[str, int]
    recent_runs: list[Run]


async def dashboard(request: Request[Any, Any, Any]) -> Dashboard:
    svc = services(request)
    since = (datetime.now(UTC) - timedelta(hours=24)).isoformat()
    scope = await read_scope(request)
    counts = {}
    for status in ("success", "failed", "running", "pending"):
        page = await svc.runs.list(status=status, limit=1, scope=scope,
                                   started_after=None if status == "pending" else since)
        counts[status] = page.total
    recent = await svc.runs.list(limit=10, scope=scope)
    return Dashboard(pipeline_count=(await svc.pipelines.list(limit=1, scope=scope)).total,
                     table_count=(await svc.tables.list(limit=1, scope=scope)).total,
                     runs_24h=counts, recent_runs=recent.runs)


@get("/", name="pages:home", include_in_schema=False, opt=access("filtered"))
async def home(request: Request[Any, Any, Any]) -> Response[str]:
    return render(request, "home/index.html", block="recent_runs", page=await dashboard(request))


ROUTES = [home]
