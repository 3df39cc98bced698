"""Run pages: the history (refreshing while runs are active) and run detail with live logs.

Live logs come from the API's SSE stream; the page renders the records written so far, the phase
timings, and Cancel / Re-run.
"""

import re
from typing import Any
from urllib.parse import urlencode

from litestar import Request, Response, get, post

from rat.core.errors import Invalid
from rat.runs.models import ACTIVE, RunCreate, RunDetail, RunPage
from rat.web.access import access, read_scope
from rat.web.deps import int_param, request_id, services
from rat.web.pages.forms import go
from rat.web.templating import is_fragment, render

# A run page shows at most this many log records inline; the rest streams or is in the API.
LOG_PAGE = 5000
PAGE = 50


def _since(text: str) -> str | None:
    """A date from the filter form (YYYY-MM-DD) as the start of that day in UTC."""
    return f"{text}T00:00:00Z" if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else (text or None)


@get("/runs", name="pages:runs", include_in_schema=False, opt=access("filtered"))
async def runs_page(request: Request[Any, Any, Any], status: str | None = None,
                    pipeline: str | None = None, since: str | None = None,
                    offset: str | None = None) -> Response[str]:
    filters = {"status": status or "", "pipeline": pipeline or "", "since": since or ""}
    error, page = None, RunPage(runs=[], total=0)
    try:
        page = await services(request).runs.list(
            status=status or None, pipeline=pipeline or None, started_after=_since(since or ""),
            limit=PAGE, offset=int_param(offset, "offset", 0), scope=await read_scope(request))
    except Invalid as exc:
        error = exc.message
    query = urlencode({k: v for k, v in filters.items() if v})
    return render(request, "runs/index.html", block="runs_table", page=page, filters=filters,
                  active=any(r.status in ACTIVE for r in page.runs), limit=PAGE,
                  offset=int_param(offset, "offset", 0), error=error,
                  query_base=(query + "&") if query else "", status=422 if error else 200)


def phases(run: RunDetail) -> list[dict[str, Any]]:
    """Phase profiles with their share of the total, for the timeline bars."""
    total = sum(int(p.get("duration_ms") or 0) for p in run.phase_profiles) or 1
    return [{"name": p.get("name", "?"), "duration_ms": int(p.get("duration_ms") or 0),
             "pct": round(100 * int(p.get("duration_ms") or 0) / total, 1),
             "metadata": p.get("metadata") or {}} for p in run.phase_profiles]


@get("/runs/{run_id:str}", name="pages:run", include_in_schema=False, opt=access("R", "run"))
async def run_page(request: Request[Any, Any, Any], run_id: str) -> Response[str]:
    svc = services(request)
    run = await svc.runs.get(run_id)
    logs = [] if is_fragment(request) else \
        (await svc.runs.logs(run_id, limit=LOG_PAGE)).logs
    quality = None if run.status in ACTIVE else await svc.quality.run_results(run_id)
    return render(request, "runs/detail.html", block="run_status", run=run, logs=logs,
                  phases=phases(run), active=run.status in ACTIVE, error=None, quality=quality)


@post("/runs/{run_id:str}/cancel", name="pages:run:cancel", include_in_schema=False,
      opt=access("W", "run"))
async def cancel_run(request: Request[Any, Any, Any], run_id: str) -> Response[Any]:
    await services(request).runs.cancel(run_id)
    return go(request, f"/runs/{run_id}")


@post("/runs/{run_id:str}/rerun", name="pages:run:rerun", include_in_schema=False,
      opt=access("W", "run"))
async def rerun(request: Request[Any, Any, Any], run_id: str) -> Response[Any]:
    svc = services(request)
    run = await svc.runs.get(run_id)
    created = await svc.runs.create(
        RunCreate(namespace=run.namespace, layer=run.layer, pipeline=run.pipeline),
        request_id=request_id(request))
    return go(request, f"/runs/{created.run_id}")


ROUTES = [runs_page, run_page, cancel_run, rerun]
