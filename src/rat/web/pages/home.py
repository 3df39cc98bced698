"""The dashboard: counts, recent runs (refreshing), failing tests, stale tables.

An empty RAT shows a first-steps guide instead.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, Response, get

from rat.lineage.models import LineageNode
from rat.runs.models import Run
from rat.tables.models import TableInfo
from rat.web.access import access, read_scope
from rat.web.deps import services
from rat.web.templating import render

STATUSES = ("success", "failed", "running", "pending")
# Lists on the dashboard are summaries: the first page of each is plenty.
SUMMARY_LIMIT = 200


class Dashboard(msgspec.Struct, kw_only=True):
    pipeline_count: int
    table_count: int
    runs_24h: dict[str, int]
    pending_files: int
    recent_runs: list[Run]
    failing: list[LineageNode]
    stale: list[TableInfo]


async def dashboard(request: Request[Any, Any, Any]) -> Dashboard:
    svc = services(request)
    scope = await read_scope(request)
    since = (datetime.now(UTC) - timedelta(hours=24)).isoformat()
    counts = await asyncio.gather(*(
        svc.runs.list(status=s, limit=1, scope=scope,
                      started_after=None if s == "pending" else since) for s in STATUSES))
    pipelines, tables, zones, recent, graph = await asyncio.gather(
        svc.pipelines.list(limit=1, scope=scope),
        svc.tables.list(limit=SUMMARY_LIMIT, scope=scope),
        svc.landing.list(limit=SUMMARY_LIMIT, scope=scope), svc.runs.list(limit=10, scope=scope),
        svc.lineage.graph(scope=scope))
    return Dashboard(
        pipeline_count=pipelines.total, table_count=tables.total,
        runs_24h={s: page.total for s, page in zip(STATUSES, counts, strict=True)},
        pending_files=sum(z.file_count for z in zones.zones), recent_runs=recent.runs,
        failing=[n for n in graph.nodes if n.type == "pipeline" and n.quality is not None
                 and (n.quality.failed or n.quality.warned)],
        stale=[t for t in tables.tables if t.freshness and t.freshness.status != "ok"])


@get("/", name="pages:home", include_in_schema=False, opt=access("filtered"))
async def home(request: Request[Any, Any, Any]) -> Response[str]:
    return render(request, "home/index.html", block="recent_runs", page=await dashboard(request))


ROUTES = [home]
