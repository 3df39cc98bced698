"""Pipeline preview, publish, versions, rollback, retention overrides and metadata sidecars."""

from typing import Any

from litestar import Request, Response, get, post, put

from rat.core.errors import Invalid
from rat.pipelines.models import (
    PipelineVersion,
    PublishRequest,
    PublishResult,
    RollbackRequest,
    RollbackResult,
    VersionPage,
)
from rat.pipelines.preview import PreviewRequest
from rat.pipelines.retention import RetentionView
from rat.web.access import access, user_id
from rat.web.body import read_json
from rat.web.deps import int_param, services

P = "/pipelines/{ns:str}/{layer:str}/{name:str}"


@post(P + "/preview", name="api:pipelines:preview", status_code=200,
      opt=access("W", "pipeline", body=PreviewRequest, errors=(400, 404, 503)))
async def preview(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                  limit: str | None = None) -> Response[bytes]:
    body = await read_json(request, PreviewRequest, optional=True)
    query_limit = int_param(limit, "limit", 0) if limit else None
    out = await services(request).preview.preview(ns, layer, name, body, query_limit)
    return Response(out, media_type="application/json")


@post(P + "/publish", name="api:pipelines:publish", status_code=200,
      opt=access("W", "pipeline", body=PublishRequest, errors=(400, 404, 422)))
async def publish(request: Request[Any, Any, Any], ns: str, layer: str,
                  name: str) -> PublishResult:
    body = await read_json(request, PublishRequest, optional=True)
    return await services(request).versions.publish(ns, layer, name, body,
                                                    created_by=user_id(request))


@get(P + "/versions", name="api:pipelines:versions",
     opt=access("R", "pipeline", errors=(400, 404)))
async def list_versions(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                        limit: str | None = None, offset: str | None = None) -> VersionPage:
    return await services(request).versions.list(
        ns, layer, name, limit=int_param(limit, "limit", 50),
        offset=int_param(offset, "offset", 0))


@get(P + "/versions/{number:str}", name="api:pipelines:version",
     opt=access("R", "pipeline", errors=(400, 404)))
async def get_version(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                      number: str, include: str | None = None) -> PipelineVersion:
    if not number.isdigit() or int(number) < 1:
        raise Invalid("number must be an integer >= 1")
    if include not in (None, "", "content"):
        raise Invalid("include must be content")
    return await services(request).versions.get(ns, layer, name, int(number),
                                                include_content=include == "content")


@post(P + "/rollback", name="api:pipelines:rollback", status_code=200,
      opt=access("W", "pipeline", escalate=("restore_data",), body=RollbackRequest,
                 errors=(400, 404, 409)))
async def rollback(request: Request[Any, Any, Any], ns: str, layer: str,
                   name: str) -> RollbackResult:
    body = await read_json(request, RollbackRequest)
    if body.version < 1:
        raise Invalid("version must be an integer >= 1")
    return await services(request).versions.rollback(ns, layer, name, body,
                                                     created_by=user_id(request))


@get(P + "/retention", name="api:pipelines:retention",
     opt=access("R", "pipeline", errors=(400, 404)))
async def get_retention(request: Request[Any, Any, Any], ns: str, layer: str,
                        name: str) -> RetentionView:
    return await services(request).retention.get(ns, layer, name)


@put(P + "/retention", name="api:pipelines:retention-put", status_code=204,
     opt=access("W", "pipeline", errors=(400, 404)))
async def put_retention(request: Request[Any, Any, Any], ns: str, layer: str, name: str) -> None:
    body = await read_json(request, dict, optional=True)
    await services(request).retention.put(ns, layer, name, body)


async def _sidecar(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                   rel: str) -> Response[dict[str, str]]:
    return Response(await services(request).versions.sidecar(ns, layer, name, rel))


@get([P + "/metadata", "/metadata/{ns:str}/pipeline/{layer:str}/{name:str}"],
     name="api:pipelines:metadata", opt=access("R", "pipeline", errors=(400, 404)))
async def pipeline_metadata(request: Request[Any, Any, Any], ns: str, layer: str,
                            name: str) -> Response[dict[str, str]]:
    return await _sidecar(request, ns, layer, name, "pipeline.meta.yaml")


@get([P + "/metadata/quality", "/metadata/{ns:str}/quality/{layer:str}/{name:str}"],
     name="api:pipelines:quality-metadata", opt=access("R", "pipeline", errors=(400, 404)))
async def quality_metadata(request: Request[Any, Any, Any], ns: str, layer: str,
                           name: str) -> Response[dict[str, str]]:
    return await _sidecar(request, ns, layer, name, "tests/quality.meta.yaml")


ROUTES = [preview, publish, list_versions, get_version, rollback, get_retention, put_retention,
          pipeline_metadata, quality_metadata]
