"""Retention admin endpoints: system config, reaper status and run-now."""

from typing import Any

from litestar import Request, Response, get, post, put

from rat.retention.models import ConfigEnvelope, ReaperStatus, RetentionConfig
from rat.web.access import access
from rat.web.body import read_json
from rat.web.deps import services


@get("/admin/retention/config", name="api:retention:config", opt=access("SA"))
async def get_config(request: Request[Any, Any, Any]) -> ConfigEnvelope:
    return ConfigEnvelope(config=await services(request).retention_settings.config())


@put("/admin/retention/config", name="api:retention:set-config",
     opt=access("SA", body=RetentionConfig, errors=(400,)))
async def put_config(request: Request[Any, Any, Any]) -> ConfigEnvelope:
    body = await read_json(request, dict[str, Any])
    return ConfigEnvelope(config=await services(request).retention_settings.update(body))


@get("/admin/retention/status", name="api:retention:status", opt=access("SA"))
async def get_status(request: Request[Any, Any, Any]) -> ReaperStatus:
    return await services(request).retention_settings.status()


@post("/admin/retention/run", name="api:retention:run", opt=access("SA", errors=(409,)))
async def run_now(request: Request[Any, Any, Any]) -> Response[ReaperStatus]:
    return Response(await services(request).reaper.run_pass(), status_code=202)


ROUTES = [get_config, put_config, get_status, run_now]
