"""Run endpoints, including live logs over Server-Sent Events."""

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.response import ServerSentEvent, ServerSentEventMessage

from rat.runs.models import (
    TERMINAL,
    RunCancelled,
    RunCreate,
    RunCreated,
    RunDetail,
    RunLogs,
    RunPage,
)
from rat.web.access import access, read_scope
from rat.web.body import read_json
from rat.web.deps import int_param, request_id, services

SSE_POLL_SECONDS = 0.5
SSE_PING_SECONDS = 15.0


@get("/runs", name="api:runs:list", opt=access("filtered", errors=(400,)))
async def list_runs(request: Request[Any, Any, Any], namespace: str | None = None,
                    layer: str | None = None, pipeline: str | None = None,
                    status: str | None = None, trigger: str | None = None,
                    started_after: str | None = None, started_before: str | None = None,
                    sort: str = "-created_at", limit: str | None = None,
                    offset: str | None = None) -> RunPage:
    return await services(request).runs.list(
        namespace=namespace or None, layer=layer or None, pipeline=pipeline or None,
        status=status, trigger=trigger or None, started_after=started_after,
        started_before=started_before, sort=sort, limit=int_param(limit, "limit", 50),
        offset=int_param(offset, "offset", 0), scope=await read_scope(request))


@post("/runs", name="api:runs:create",
      opt=access("W", "body:pipeline", body=RunCreate, errors=(400, 404)))
async def create_run(request: Request[Any, Any, Any]) -> Response[RunCreated]:
    body = await read_json(request, RunCreate)
    created = await services(request).runs.create(body, request_id=request_id(request) or None)
    return Response(created, status_code=202)


@get("/runs/{run_id:str}", name="api:runs:get", opt=access("R", "run", errors=(400, 404)))
async def get_run(request: Request[Any, Any, Any], run_id: str) -> RunDetail:
    return await services(request).runs.get(run_id)


@post("/runs/{run_id:str}/cancel", name="api:runs:cancel", status_code=200,
      opt=access("W", "run", errors=(400, 404, 409)))
async def cancel_run(request: Request[Any, Any, Any], run_id: str) -> RunCancelled:
    return await services(request).runs.cancel(run_id)


@get("/runs/{run_id:str}/logs", name="api:runs:logs",
     opt=access("R", "run", errors=(400, 404, 429)))
async def run_logs(request: Request[Any, Any, Any], run_id: str, after_seq: str | None = None,
                   level: str | None = None) -> Response[Any]:
    svc = services(request)
    after = int_param(after_seq, "after_seq", 0)
    if "text/event-stream" not in request.headers.get("accept", ""):
        return Response(await svc.runs.logs(run_id, after_seq=after, level=level))
    last_event = request.headers.get("last-event-id")
    if last_event and last_event.isdigit():
        after = int(last_event)
    run = await svc.runs.get(run_id)
    svc.runs.levels_from(level)
    stream = _log_stream(request, str(run.id), after, level, svc.settings.sse_max_seconds)
    return ServerSentEvent(stream, headers={"Cache-Control": "no-cache"})


async def _log_stream(request: Request[Any, Any, Any], run_id: str, after: int,
                      level: str | None, max_seconds: int,
                      ) -> AsyncGenerator[ServerSentEventMessage, None]:
    runs = services(request).runs
    started = last_ping = time.monotonic()
    while True:
        page: RunLogs = await runs.logs(run_id, after_seq=after, level=level, limit=500)
        for record in page.logs:
            after = record.seq
            yield ServerSentEventMessage(data=msgspec.json.encode(record).decode(), event="log",
                                         id=str(record.seq))
        if page.status in TERMINAL and not page.logs:
            yield ServerSentEventMessage(data=f'{{"status":"{page.status}"}}', event="status")
            return
        now = time.monotonic()
        if now - started > max_seconds:
            yield ServerSentEventMessage(
                data='{"code":"TIMEOUT","message":"stream closed: maximum duration exceeded"}',
                event="error")
            return
        if now - last_ping > SSE_PING_SECONDS:
            last_ping = now
            yield ServerSentEventMessage(comment="ping")
        if not page.logs:
            await asyncio.sleep(SSE_POLL_SECONDS)


ROUTES = [list_runs, create_run, get_run, cancel_run, run_logs]
