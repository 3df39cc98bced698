"""Pipeline triggers tab: cron schedules and the six trigger types, as plain forms.

Every schedule and trigger can be edited in place (cron/timezone; config and cooldown); a bad
value re-renders that form with the error and what was typed. A webhook token exists only in the
response to create/rotate: it is rendered once, with a copy button and a curl example, and never
stored or shown again.
"""

from typing import Any

from litestar import Request, Response, post

from rat.core.errors import Invalid, NotFound, RatError
from rat.pipelines.models import Pipeline
from rat.schedules.models import (
    ScheduleCreate,
    ScheduleUpdate,
    Trigger,
    TriggerCreate,
    TriggerUpdate,
)
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
# The tab lists what one pipeline has; more than this is not a real configuration.
TAB_LIMIT = 200


def base_url(request: Request[Any, Any, Any], svc: Services) -> str:
    return svc.settings.base_url or str(request.base_url)


async def triggers_context(svc: Services, p: Pipeline,
                           request: Request[Any, Any, Any]) -> dict[str, Any]:
    scope = await read_scope(request)
    schedules = await svc.schedules.list(namespace=p.namespace, layer=p.layer, pipeline=p.name,
                                         limit=TAB_LIMIT)
    triggers = await svc.triggers.list(p.namespace, p.layer, p.name,
                                       base_url=base_url(request, svc), limit=TAB_LIMIT)
    zones = await svc.landing.list(namespace=p.namespace, limit=TAB_LIMIT, scope=scope)
    others = await svc.pipelines.list(namespace=p.namespace, limit=TAB_LIMIT, scope=scope)
    return {"schedules": schedules.schedules, "triggers": triggers.triggers,
            "zones": [z.name for z in zones.zones],
            "upstreams": [f"{o.layer}.{o.name}" for o in others.pipelines if o.id != p.id],
            "trigger_forms": TRIGGER_FORMS, "config_form": config_form,
            "schedule_form": {"cron": "", "timezone": "UTC"}, "schedule_error": None,
            "schedule_edit": None, "trigger_form": {}, "trigger_error": None,
            "trigger_type": None, "trigger_edit": None, "new_token": None}


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


def config_form(trigger: Trigger, namespace: str) -> dict[str, str]:
    """A stored trigger as the values of its edit form (the inverse of `trigger_config`)."""
    form = {k: str(v) for k, v in trigger.config.items() if isinstance(v, str)}
    deps = trigger.config.get("dependencies")
    if isinstance(deps, list):
        own = namespace + "."
        form["dependencies"] = ", ".join(d[len(own):] if d.startswith(own) else d for d in deps)
    form["cooldown_seconds"] = str(trigger.cooldown_seconds)
    return form


async def _tab(request: Request[Any, Any, Any], p: Pipeline, block: str, *, status: int = 200,
               **override: Any) -> Response[str]:
    ctx = {**await triggers_context(services(request), p, request), **override}
    return render(request, "pipelines/tab_triggers.html", block=block, status=status, p=p,
                  tab="triggers", tabs=TABS, base=pipeline_url(p), **ctx)


async def _done(request: Request[Any, Any, Any], p: Pipeline, block: str,
                **override: Any) -> Response[Any]:
    """The refreshed block for htmx, a redirect for a plain post.

    Not when a webhook token must be shown: a redirect would lose it (a token never goes into a URL).
    """
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
      include_in_schema=False, opt=access("W", "pipeline"))
async def edit_schedule(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                        schedule_id: str) -> Response[Any]:
    """`action` = save (cron, timezone), enable, disable or delete."""
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    schedule = await svc.schedules.get(schedule_id)
    if schedule.pipeline_id != p.id:
        raise NotFound("schedule not found")
    form = await form_data(request)
    action = form.get("action")
    try:
        if action == "delete":
            await svc.schedules.delete(schedule_id)
        elif action == "save":
            await svc.schedules.update(schedule_id, ScheduleUpdate(
                cron=form.get("cron", ""), timezone=form.get("timezone") or "UTC"))
        else:
            await svc.schedules.update(schedule_id, ScheduleUpdate(enabled=action == "enable"))
    except Invalid as exc:
        return await _tab(request, p, "schedules", status=422, schedule_edit={
            "id": str(schedule.id), "form": form, "error": exc.message})
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


def _token(trigger: Trigger) -> dict[str, str] | None:
    token = trigger.webhook_token
    return {"token": token, "url": str(trigger.webhook_url)} if isinstance(token, str) else None


async def _change_trigger(request: Request[Any, Any, Any], p: Pipeline, current: Trigger,
                          form: dict[str, str]) -> dict[str, str] | None:
    """Apply one row action; returns the new webhook token after a rotation."""
    svc, (ns, layer, name) = services(request), (p.namespace, p.layer, p.name)
    action, url, tid = form.get("action"), base_url(request, svc), str(current.id)
    if action == "delete":
        await svc.triggers.delete(ns, layer, name, tid)
    elif action == "rotate":
        return _token(await svc.triggers.rotate_token(ns, layer, name, tid, base_url=url))
    elif action == "save":
        config = None if current.type == "webhook" else trigger_config(current.type, form, ns)
        cooldown = int_param(form.get("cooldown_seconds"), "cooldown_seconds", 0)
        await svc.triggers.update(ns, layer, name, tid, TriggerUpdate(
            config=config, cooldown_seconds=cooldown), base_url=url)
    else:
        await svc.triggers.update(ns, layer, name, tid,
                                  TriggerUpdate(enabled=action == "enable"), base_url=url)
    return None


@post(P + "/triggers/{trigger_id:str}", name="pages:pipeline:trigger:edit",
      include_in_schema=False, opt=access("W", "pipeline"))
async def edit_trigger(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                       trigger_id: str) -> Response[Any]:
    """`action` = save (config, cooldown), enable, disable, delete or rotate (webhook token)."""
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    current = await svc.triggers.get(ns, layer, name, trigger_id,
                                     base_url=base_url(request, svc))
    form = await form_data(request)
    try:
        new_token = await _change_trigger(request, p, current, form)
    except Invalid as exc:
        return await _tab(request, p, "triggers", status=422, trigger_edit={
            "id": str(current.id), "form": form, "error": exc.message})
    return await _done(request, p, "triggers", new_token=new_token)


ROUTES = [add_schedule, edit_schedule, add_trigger, edit_trigger]
