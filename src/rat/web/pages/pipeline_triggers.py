"""Pipeline triggers tab: cron schedules and the six trigger types, as plain forms.

A webhook token exists only in the response to create/rotate: it is rendered once, with a copy
field and a curl example, and never stored or shown again.
"""

from typing import Any

from litestar import Request, Response, post

from rat.core.errors import Invalid, RatError
from rat.pipelines.models import Pipeline
from rat.schedules.models import ScheduleCreate, ScheduleUpdate, TriggerCreate, TriggerUpdate
from rat.web.access import access, read_scope
from rat.web.deps import Services, int_param, services
from rat.web.pages.forms import form_data, go
from rat.web.pages.pipeline_paths import TABS, P, pipeline_url
from rat.web.templating import is_fragment, render

TRIGGER_FORMS = (
    ("landing_zone_upload", "A file lands in a zone"),
    ("file_pattern", "A file whose name matches a pattern lands"),
    ("pipeline_success", "Another pipeline succeeds"),
    ("cron", "On a cron schedule (trigger)"),
    ("cron_dependency", "On a cron schedule, once dependencies succeeded"),
    ("webhook", "A webhook is called"))


def base_url(request: Request[Any, Any, Any], svc: Services) -> str:
    return svc.settings.base_url or str(request.base_url)


async def triggers_context(svc: Services, p: Pipeline,
                           request: Request[Any, Any, Any]) -> dict[str, Any]:
    schedules = await svc.schedules.list(namespace=p.namespace, layer=p.layer, pipeline=p.name,
                                         limit=200)
    triggers = await svc.triggers.list(p.namespace, p.layer, p.name,
                                       base_url=base_url(request, svc), limit=200)
    zones = await svc.landing.list(namespace=p.namespace, limit=200,
                                   scope=await read_scope(request))
    return {"schedules": schedules.schedules, "triggers": triggers.triggers,
            "zones": [z.name for z in zones.zones], "trigger_forms": TRIGGER_FORMS,
            "schedule_form": {"cron": "", "timezone": "UTC"}, "schedule_error": None,
            "trigger_form": {}, "trigger_error": None, "trigger_type": None,
            "new_token": None}


def _dependency(ref: str, namespace: str) -> str:
    """`layer.name` → `ns.layer.name` in the pipeline's namespace."""
    ref = ref.strip()
    return f"{namespace}.{ref}" if ref.count(".") == 1 else ref


def _cron_config(type_: str, form: dict[str, str], namespace: str) -> dict[str, Any]:
    config: dict[str, Any] = {"cron_expr": form.get("cron_expr", ""),
                              "timezone": form.get("timezone") or "UTC"}
    if type_ == "cron_dependency":
        config["dependencies"] = [_dependency(d, namespace) for d in
                                  form.get("dependencies", "").split(",") if d.strip()]
        config["mode"] = form.get("mode") or "all"
    return config


def trigger_config(type_: str, form: dict[str, str], namespace: str) -> dict[str, Any]:
    """The API `config` for one trigger form (the service validates it)."""
    ns = form.get("namespace") or namespace
    if type_ in ("landing_zone_upload", "file_pattern"):
        zone: dict[str, Any] = {"namespace": ns, "zone_name": form.get("zone_name", "")}
        return {**zone, "pattern": form.get("pattern", "")} if type_ == "file_pattern" else zone
    if type_ == "pipeline_success":
        return {"namespace": ns, "layer": form.get("layer", ""),
                "pipeline": form.get("pipeline", "")}
    if type_ in ("cron", "cron_dependency"):
        return _cron_config(type_, form, namespace)
    return {}


async def _tab(request: Request[Any, Any, Any], p: Pipeline, block: str, *, status: int = 200,
               **override: Any) -> Response[str]:
    ctx = {**await triggers_context(services(request), p, request), **override}
    return render(request, "pipelines/tab_triggers.html", block=block, status=status, p=p,
                  tab="triggers", tabs=TABS, base=pipeline_url(p), **ctx)


async def _done(request: Request[Any, Any, Any], p: Pipeline, block: str,
                **override: Any) -> Response[Any]:
    if not is_fragment(request) and not override.get("new_token"):
        return go(request, pipeline_url(p, "triggers"))
    return await _tab(request, p, block, **override)


@post(P + "/schedules", name="pages:pipeline:schedule", include_in_schema=False,
      opt=access("W", "pipeline"))
async def add_schedule(request: Request[Any, Any, Any], ns: str, layer: str,
                       name: str) -> Response[Any]:
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    form = await form_data(request)
    try:
        await svc.schedules.create(ScheduleCreate(namespace=ns, layer=layer, pipeline=name,
                                                  cron=form.get("cron", ""),
                                                  timezone=form.get("timezone") or "UTC"))
    except RatError as exc:
        return await _tab(request, p, "schedules", status=422, schedule_form=form,
                          schedule_error=exc.message)
    return await _done(request, p, "schedules")


@post(P + "/schedules/{schedule_id:str}", name="pages:pipeline:schedule:edit",
      include_in_schema=False,
      opt=access("W", "pipeline"))
async def edit_schedule(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                        schedule_id: str) -> Response[Any]:
    """`action` = enable, disable or delete."""
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    schedule = await svc.schedules.get(schedule_id)
    if schedule.pipeline_id != p.id:
        raise Invalid("schedule belongs to another pipeline")
    action = (await form_data(request)).get("action")
    if action == "delete":
        await svc.schedules.delete(schedule_id)
    else:
        await svc.schedules.update(schedule_id, ScheduleUpdate(enabled=action == "enable"))
    return await _done(request, p, "schedules")


@post(P + "/triggers", name="pages:pipeline:trigger", include_in_schema=False,
      opt=access("W", "pipeline"))
async def add_trigger(request: Request[Any, Any, Any], ns: str, layer: str,
                      name: str) -> Response[Any]:
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    form = await form_data(request)
    type_ = form.get("type", "")
    try:
        body = TriggerCreate(type=type_, config=trigger_config(type_, form, ns),
                             cooldown_seconds=int_param(form.get("cooldown_seconds"),
                                                        "cooldown_seconds", 0))
        created = await svc.triggers.create(ns, layer, name, body,
                                            base_url=base_url(request, svc))
    except RatError as exc:
        return await _tab(request, p, "triggers", status=422, trigger_form=form,
                          trigger_error=exc.message, trigger_type=type_)
    return await _done(request, p, "triggers", new_token=_token(created))


def _token(trigger: Any) -> dict[str, str] | None:
    token = getattr(trigger, "webhook_token", None)
    return {"token": token, "url": trigger.webhook_url} if isinstance(token, str) else None


@post(P + "/triggers/{trigger_id:str}", name="pages:pipeline:trigger:edit",
      include_in_schema=False,
      opt=access("W", "pipeline"))
async def edit_trigger(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                       trigger_id: str) -> Response[Any]:
    """`action` = enable, disable, delete or rotate (webhook token)."""
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    action = (await form_data(request)).get("action")
    new_token = None
    if action == "delete":
        await svc.triggers.delete(ns, layer, name, trigger_id)
    elif action == "rotate":
        new_token = _token(await svc.triggers.rotate_token(ns, layer, name, trigger_id,
                                                           base_url=base_url(request, svc)))
    else:
        await svc.triggers.update(ns, layer, name, trigger_id,
                                  TriggerUpdate(enabled=action == "enable"),
                                  base_url=base_url(request, svc))
    return await _done(request, p, "triggers", new_token=new_token)


ROUTES = [add_schedule, edit_schedule, add_trigger, edit_trigger]
