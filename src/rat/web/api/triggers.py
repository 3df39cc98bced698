"""Trigger endpoints and the public webhook receiver."""

from typing import Any

from litestar import Request, Response, delete, get, post, put

from rat.core.errors import Invalid, TooLarge
from rat.schedules.models import Fired, Trigger, TriggerCreate, TriggerPage, TriggerUpdate
from rat.web.access import access
from rat.web.body import read_json
from rat.web.deps import Services, int_param, services

P = "/pipelines/{ns:str}/{layer:str}/{name:str}/triggers"
T = P + "/{trigger_id:str}"
MAX_WEBHOOK_BODY = 1024 * 1024


def _base_url(request: Request[Any, Any, Any], svc: Services) -> str:
    return svc.settings.base_url or str(request.base_url)


@get(P, name="api:triggers:list", opt=access("R", "pipeline", errors=(400, 404)))
async def list_triggers(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                        limit: str | None = None, offset: str | None = None) -> TriggerPage:
    svc = services(request)
    return await svc.triggers.list(ns, layer, name, base_url=_base_url(request, svc),
                                   limit=int_param(limit, "limit", 50),
                                   offset=int_param(offset, "offset", 0))


@post(P, name="api:triggers:create",
      opt=access("W", "pipeline", body=TriggerCreate, errors=(400, 404)))
async def create_trigger(request: Request[Any, Any, Any], ns: str, layer: str,
                         name: str) -> Response[Trigger]:
    svc = services(request)
    body = await read_json(request, TriggerCreate)
    created = await svc.triggers.create(ns, layer, name, body, base_url=_base_url(request, svc))
    return Response(created, status_code=201)


@get(T, name="api:triggers:get", opt=access("R", "pipeline", errors=(400, 404)))
async def get_trigger(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                      trigger_id: str) -> Trigger:
    svc = services(request)
    return await svc.triggers.get(ns, layer, name, trigger_id, base_url=_base_url(request, svc))


@put(T, name="api:triggers:update",
     opt=access("W", "pipeline", body=TriggerUpdate, errors=(400, 404)))
async def update_trigger(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                         trigger_id: str) -> Trigger:
    svc = services(request)
    body = await read_json(request, TriggerUpdate)
    return await svc.triggers.update(ns, layer, name, trigger_id, body,
                                     base_url=_base_url(request, svc))


@delete(T, name="api:triggers:delete", status_code=204,
        opt=access("W", "pipeline", errors=(400, 404)))
async def delete_trigger(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                         trigger_id: str) -> None:
    await services(request).triggers.delete(ns, layer, name, trigger_id)


@post(T + "/rotate-token", name="api:triggers:rotate", status_code=200,
      opt=access("W", "pipeline", errors=(400, 404)))
async def rotate_token(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                       trigger_id: str) -> Trigger:
    svc = services(request)
    return await svc.triggers.rotate_token(ns, layer, name, trigger_id,
                                           base_url=_base_url(request, svc))


def _token(request: Request[Any, Any, Any]) -> str | None:
    if "token" in request.query_params:
        raise Invalid("send the webhook token in a header, never in the URL")
    header = request.headers.get("x-webhook-token")
    if header:
        return header.strip()
    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


@post("/webhooks", name="api:webhooks:fire",
      opt=access("public", errors=(400, 404, 413, 429)))
async def fire_webhook(request: Request[Any, Any, Any]) -> Response[Fired]:
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_WEBHOOK_BODY:
        raise TooLarge("webhook body must be at most 1 MiB")
    token = _token(request)
    fired = await services(request).firing.webhook(token)
    return Response(fired, status_code=200 if fired.coalesced else 201)


ROUTES = [list_triggers, create_trigger, get_trigger, update_trigger, delete_trigger,
          rotate_token, fire_webhook]
