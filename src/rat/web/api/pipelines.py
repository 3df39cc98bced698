"""Pipeline endpoints."""

from typing import Any

from litestar import Request, Response, delete, get, post, put

from rat.pipelines.models import Created, Pipeline, PipelineCreate, PipelinePage, PipelineUpdate
from rat.web.access import access, read_scope, user_id
from rat.web.body import read_json
from rat.web.deps import bool_param, int_param, services

P = "/pipelines/{ns:str}/{layer:str}/{name:str}"


@get("/pipelines", name="api:pipelines:list", opt=access("filtered", errors=(400,)))
async def list_pipelines(request: Request[Any, Any, Any], namespace: str | None = None,
                         layer: str | None = None, search: str | None = None,
                         sort: str = "-created_at", limit: str | None = None,
                         offset: str | None = None) -> PipelinePage:
    return await services(request).pipelines.list(
        namespace=namespace or None, layer=layer or None, search=search, sort=sort,
        limit=int_param(limit, "limit", 50), offset=int_param(offset, "offset", 0),
        scope=await read_scope(request))


@post("/pipelines", name="api:pipelines:create",
      opt=access("W", "body:namespace", body=PipelineCreate, errors=(400, 404, 409)))
async def create_pipeline(request: Request[Any, Any, Any]) -> Response[Created]:
    body = await read_json(request, PipelineCreate)
    created = await services(request).pipelines.create(body, owner=user_id(request))
    return Response(created, status_code=201)


@get(P, name="api:pipelines:get", opt=access("R", "pipeline", errors=(400, 404)))
async def get_pipeline(request: Request[Any, Any, Any], ns: str, layer: str,
                       name: str) -> Pipeline:
    return await services(request).pipelines.get(ns, layer, name)


@put(P, name="api:pipelines:update", opt=access("W", "pipeline", escalate=("owner",),
                                                 body=PipelineUpdate, errors=(400, 404)))
async def update_pipeline(request: Request[Any, Any, Any], ns: str, layer: str,
                          name: str) -> Pipeline:
    body = await read_json(request, PipelineUpdate)
    return await services(request).pipelines.update(ns, layer, name, body)


@delete(P, name="api:pipelines:delete", status_code=204,
        opt=access("A", "pipeline", errors=(400, 404)))
async def delete_pipeline(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                          drop_table: str | None = None) -> None:
    await services(request).pipelines.delete(
        ns, layer, name, drop_table=bool_param(drop_table, "drop_table"))


ROUTES = [list_pipelines, create_pipeline, get_pipeline, update_pipeline, delete_pipeline]
