"""Retention endpoints: system config, reaper status and run-now, per-pipeline overrides."""

from typing import Any

from litestar import Request, Response, get, post, put

from rat.retention.models import ConfigEnvelope, PipelineRetention, ReaperStatus, RetentionConfig
from rat.web.access import access
from rat.web.body import read_json
from rat.web.deps import services

P = "/pipelines/{ns:str}/{layer:str}/{name:str}/retention"


@get("/admin/retention/config", name="api:retention:config", opt=access("SA"))
async def get_config(request: Request[Any, Any, Any]) -> ConfigEnvelope:
    return ConfigEnvelope(config=await services(request).retention.config())


@put("/admin/retention/config", name="api:retention:set-config",
     opt=access("SA", body=RetentionConfig, errors=(400,)))
async def put_config(request: Request[Any, Any, Any]) -> ConfigEnvelope:
    body = await read_json(request, dict[str, Any])
    return ConfigEnvelope(config=await services(request).retention.update(body))


@get("/admin/retention/status", name="api:retention:status", opt=access("SA"))
async def get_status(request: Request[Any, Any, Any]) -> ReaperStatus:
    return await services(request).retention.status()


@post("/admin/retention/run", name="api:retention:run", opt=access("SA", errors=(409,)))
async def run_now(request: Request[Any, Any, Any]) -> Response[ReaperStatus]:
    return Response(await services(request).reaper.run_pass(), status_code=202)


@get(P, name="api:retention:pipeline", opt=access("R", "pipeline", errors=(400, 404)))
async def get_pipeline_retention(request: Request[Any, Any, Any], ns: str, layer: str,
                                 name: str) -> PipelineRetention:
    return await services(request).retention.for_pipeline(ns, layer, name)


@put(P, name="api:retention:set-pipeline", status_code=204,
     opt=access("W", "pipeline", body=RetentionConfig, errors=(400, 404)))
async def put_pipeline_retention(request: Request[Any, Any, Any], ns: str, layer: str,
                                 name: str) -> None:
    body = await read_json(request, dict[str, Any])
    await services(request).retention.set_for_pipeline(ns, layer, name, body)


ROUTES = [get_config, put_config, get_status, run_now, get_pipeline_retention,
          put_pipeline_retention]
