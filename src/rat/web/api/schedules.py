"""Schedule endpoints."""

from typing import Any

from litestar import Request, Response, delete, get, post, put

from rat.schedules.models import Schedule, ScheduleCreate, SchedulePage, ScheduleUpdate
from rat.web.access import access, read_scope
from rat.web.body import read_json
from rat.web.deps import bool_param, int_param, services


def _enabled(value: str | None) -> bool | None:
    return None if value is None or value == "" else bool_param(value, "enabled")


@get("/schedules", name="api:schedules:list", opt=access("filtered", errors=(400,)))
async def list_schedules(request: Request[Any, Any, Any], namespace: str | None = None,
                         layer: str | None = None, pipeline: str | None = None,
                         enabled: str | None = None, limit: str | None = None,
                         offset: str | None = None) -> SchedulePage:
    return await services(request).schedules.list(
        namespace=namespace or None, layer=layer or None, pipeline=pipeline or None,
        enabled=_enabled(enabled), limit=int_param(limit, "limit", 50),
        offset=int_param(offset, "offset", 0), scope=await read_scope(request))


@get("/schedules/{schedule_id:str}", name="api:schedules:get",
     opt=access("R", "schedule", errors=(400, 404)))
async def get_schedule(request: Request[Any, Any, Any], schedule_id: str) -> Schedule:
    return await services(request).schedules.get(schedule_id)


@post("/schedules", name="api:schedules:create",
      opt=access("W", "body:pipeline", body=ScheduleCreate, errors=(400, 404)))
async def create_schedule(request: Request[Any, Any, Any]) -> Response[Schedule]:
    body = await read_json(request, ScheduleCreate)
    return Response(await services(request).schedules.create(body), status_code=201)


@put("/schedules/{schedule_id:str}", name="api:schedules:update",
     opt=access("W", "schedule", body=ScheduleUpdate, errors=(400, 404)))
async def update_schedule(request: Request[Any, Any, Any], schedule_id: str) -> Schedule:
    body = await read_json(request, ScheduleUpdate)
    return await services(request).schedules.update(schedule_id, body)


@delete("/schedules/{schedule_id:str}", name="api:schedules:delete", status_code=204,
        opt=access("W", "schedule", errors=(400, 404)))
async def delete_schedule(request: Request[Any, Any, Any], schedule_id: str) -> None:
    await services(request).schedules.delete(schedule_id)


ROUTES = [list_schedules, get_schedule, create_schedule, update_schedule, delete_schedule]
