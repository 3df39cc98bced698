"""The dashboard: counts, recent runs (refreshing), failing tests, stale tables.

An empty RAT shows a first-steps guide instead.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from litestar import Request, Response, get

from rat.lineage.models import LineageNode
from rat.plugins.protocols import ReadScope
from rat.runs.models import Run
from rat.tables.models import TableInfo
from rat.web.access import access, read_scope
from rat.web.deps import Services, services
from rat.web.templating import render

STATUSES = ("success", "failed", "running", "pending")
# Finished runs are counted over the last day; active ones whenever they started.
FINISHED = ("success", "failed")
PAGE = 200


class Dashboard(msgspec.Struct, kw_only=True):
    pipeline_count: int
    table_count: int
    runs_24h: dict[str, int]
    pending_files: int
    recent_runs: list[Run]
    failing: list[LineageNode]
    stale: list[TableInfo]


async def _pending_files(svc: Services, scope: ReadScope | None) -> int:
    """Unprocessed files over every zone (zones come a page at a time)."""
    total, offset, seen = 0, 0, None
    while seen is None or offset < seen:
        page = await svc.landing.list(limit=PAGE, offset=offset, scope=scope)
        total += sum(z.file_count for z in page.zones)
        seen, offset = page.total, offset + PAGE
    return total


async def _stale_tables(svc: Services, scope: ReadScope | None) -> tuple[int, list[TableInfo]]:
    """The table count and the tables whose freshness rule is not met, over every page."""
    stale: list[TableInfo] = []
    offset, seen = 0, None
    while seen is None or offset < seen:
        page = await svc.tables.list(limit=PAGE, offset=offset, scope=scope)
        stale += [t for t in page.tables if t.freshness and t.freshness.status != "ok"]
        seen, offset = page.total, offset + PAGE
    return seen, stale


async def dashboard(request: Request[Any, Any, Any]) -> Dashboard:
    svc = services(request)
    scope = await read_scope(request)
    since = (datetime.now(UTC) - timedelta(hours=24)).isoformat()
    counts = await asyncio.gather(*(
        svc.runs.list(status=s, limit=1, scope=scope,
                      started_after=since if s in FINISHED else None) for s in STATUSES))
    pipelines, (table_count, stale), files, recent, graph = await asyncio.gather(
        svc.pipelines.list(limit=1, scope=scope), _stale_tables(svc, scope),
        _pending_files(svc, scope), svc.runs.list(limit=10, scope=scope),
        svc.lineage.graph(scope=scope))
    return Dashboard(
        pipeline_count=pipelines.total, table_count=table_count,
        runs_24h={s: page.total for s, page in zip(STATUSES, counts, strict=True)},
        pending_files=files, recent_runs=recent.runs,
        failing=[n for n in graph.nodes if n.type == "pipeline" and n.quality is not None
                 and (n.quality.failed or n.quality.warned)],
        stale=stale)


@get("/", name="pages:home", include_in_schema=False, opt=access("filtered"))
async def home(request: Request[Any, Any, Any]) -> Response[str]:
    return render(request, "home/index.html", block="recent_runs", page=await dashboard(request))


ROUTES = [home]
