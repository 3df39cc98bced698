"""Pipeline page actions (form posts): run, save/create/delete files, settings, delete.

Success: htmx gets the updated block, a plain form post is redirected (303) to the tab.
Failure: the form's block is re-rendered with the error next to the field and the user's input
kept (422 for htmx; the full page without JavaScript).
"""

from typing import Any

from litestar import Request, Response, post

from rat.core.errors import Invalid, RatError
from rat.pipelines.configform import StrategyForm, load_strategy, save_strategy
from rat.pipelines.models import Pipeline, PipelineUpdate
from rat.pipelines.retention import PIPELINE_KEYS, check_overrides
from rat.runs.models import RunCreate
from rat.web.access import access
from rat.web.deps import request_id, services
from rat.web.pages.forms import form_data, go, to_struct
from rat.web.pages.pipeline import tab_context
from rat.web.pages.pipeline_paths import TABS, P, pipeline_url
from rat.web.pages.settings import retention_errors, retention_values
from rat.web.templating import is_fragment, render


async def _pipeline(request: Request[Any, Any, Any], ns: str, layer: str, name: str) -> Pipeline:
    return await services(request).pipelines.get(ns, layer, name)


async def _tab(request: Request[Any, Any, Any], p: Pipeline, tab: str,
               block: str | tuple[str, ...], *, status: int = 200,
               **override: Any) -> Response[str]:
    """Render `block` of a tab (or the whole tab page without htmx) with `override` applied."""
    ctx = {**await tab_context(request, p, tab), **override}
    return render(request, f"pipelines/tab_{tab}.html", block=block, status=status, p=p,
                  tab=tab, tabs=TABS, base=pipeline_url(p), **ctx)


@post(P + "/run", name="pages:pipeline:run", include_in_schema=False,
      opt=access("W", "pipeline"))
async def run_pipeline(request: Request[Any, Any, Any], ns: str, layer: str,
                       name: str) -> Response[Any]:
    created = await services(request).runs.create(
        RunCreate(namespace=ns, layer=layer, pipeline=name), request_id=request_id(request))
    return go(request, f"/runs/{created.run_id}")


@post(P + "/files", name="pages:pipeline:save", include_in_schema=False,
      opt=access("W", "pipeline"))
async def save_file(request: Request[Any, Any, Any], ns: str, layer: str,
                    name: str) -> Response[Any]:
    """Ctrl-S in the editor: write one draft file; answer with the save status and Draft badge."""
    p = await _pipeline(request, ns, layer, name)
    form = await form_data(request)
    rel, content = form.get("path", ""), form.get("content", "")
    try:
        await services(request).files.write(p.prefix + rel, content)
    except RatError as exc:
        return await _tab(request, p, "code", "save_status", status=422, save_error=exc.message,
                          current=rel, content=content, saved=False)
    if not is_fragment(request):
        return go(request, f"{pipeline_url(p, 'code')}&file={rel}")
    p = await _pipeline(request, ns, layer, name)
    return await _tab(request, p, "code", ("save_status", "oob_badges"), save_error=None,
                      current=rel, saved=True)


@post(P + "/files/new", name="pages:pipeline:new_file", include_in_schema=False,
      opt=access("W", "pipeline"))
async def new_file(request: Request[Any, Any, Any], ns: str, layer: str,
                   name: str) -> Response[Any]:
    p = await _pipeline(request, ns, layer, name)
    rel = (await form_data(request)).get("path", "").strip()
    try:
        if not rel or rel.startswith("/"):
            raise Invalid("path must be relative to the pipeline folder, e.g. tests/quality/x.sql")
        await services(request).files.write(p.prefix + rel, "")
    except RatError as exc:
        return await _tab(request, p, "code", "new_file", status=422, new_path=rel,
                          new_error=exc.message)
    return go(request, f"{pipeline_url(p, 'code')}&file={rel}")


@post(P + "/files/delete", name="pages:pipeline:delete_file", include_in_schema=False,
      opt=access("W", "pipeline"))
async def delete_file(request: Request[Any, Any, Any], ns: str, layer: str,
                      name: str) -> Response[Any]:
    p = await _pipeline(request, ns, layer, name)
    rel = (await form_data(request)).get("path", "")
    await services(request).files.delete(p.prefix + rel)
    return go(request, pipeline_url(p, "code"))


@post(P + "/settings/description", name="pages:pipeline:describe", include_in_schema=False,
      opt=access("W", "pipeline"))
async def save_description(request: Request[Any, Any, Any], ns: str, layer: str,
                           name: str) -> Response[Any]:
    form = await form_data(request)
    return await _update_setting(request, ns, layer, name, "description", form,
                                 PipelineUpdate(description=form.get("description", "")))


@post(P + "/settings/owner", name="pages:pipeline:owner", include_in_schema=False,
      opt=access("A", "pipeline"))
async def save_owner(request: Request[Any, Any, Any], ns: str, layer: str,
                     name: str) -> Response[Any]:
    """Transfer of ownership: its own form, because it needs admin where the rest needs write."""
    form = await form_data(request)
    return await _update_setting(request, ns, layer, name, "owner", form,
                                 PipelineUpdate(owner=form.get("owner", "").strip() or None))


async def _update_setting(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                          key: str, form: dict[str, str], body: PipelineUpdate) -> Response[Any]:
    """Apply one settings form (`{key}_form` block): inline error, or saved mark / redirect."""
    p = await _pipeline(request, ns, layer, name)
    try:
        p = await services(request).pipelines.update(ns, layer, name, body)
    except RatError as exc:
        return await _tab(request, p, "settings", f"{key}_form", status=422,
                          **{f"{key}_error": exc.message, f"{key}_form": form})
    if not is_fragment(request):
        return go(request, pipeline_url(p, "settings"))
    return await _tab(request, p, "settings", f"{key}_form", **{f"{key}_saved": True})


@post(P + "/settings/strategy", name="pages:pipeline:strategy", include_in_schema=False,
      opt=access("W", "pipeline"))
async def save_strategy_form(request: Request[Any, Any, Any], ns: str, layer: str,
                             name: str) -> Response[Any]:
    svc = services(request)
    p = await _pipeline(request, ns, layer, name)
    form = to_struct(await form_data(request), StrategyForm)
    try:
        await save_strategy(svc.files, p, form)
    except RatError as exc:
        fields = exc.extra.get("fields") or {"_form": exc.message}
        shown = await load_strategy(svc.files, p, form)
        return await _tab(request, p, "settings", "strategy_form", status=422,
                          strategy=shown.form, strategy_errors=fields)
    if not is_fragment(request):
        return go(request, pipeline_url(p, "settings"))
    return await _tab(request, p, "settings", "strategy_form", strategy_saved=True)


@post(P + "/settings/retention", name="pages:pipeline:retention", include_in_schema=False,
      opt=access("W", "pipeline"))
async def save_retention(request: Request[Any, Any, Any], ns: str, layer: str,
                         name: str) -> Response[Any]:
    """Per-pipeline overrides; an empty field inherits the system value."""
    p = await _pipeline(request, ns, layer, name)
    form = await form_data(request)
    values = retention_values(form, PIPELINE_KEYS)
    errors = retention_errors(values, check_overrides)
    if errors:
        return await _tab(request, p, "settings", "retention_form", status=422,
                          retention_form=form, retention_errors=errors)
    await services(request).retention.put(ns, layer, name, values)
    if not is_fragment(request):
        return go(request, pipeline_url(p, "settings"))
    return await _tab(request, p, "settings", "retention_form", retention_saved=True)


@post(P + "/delete", name="pages:pipeline:delete", include_in_schema=False,
      opt=access("A", "pipeline"))
async def delete_pipeline(request: Request[Any, Any, Any], ns: str, layer: str,
                          name: str) -> Response[Any]:
    p = await _pipeline(request, ns, layer, name)
    form = await form_data(request)
    if form.get("confirm", "") != p.name:
        return await _tab(request, p, "settings", "delete_form", status=422,
                          delete_error=f"type the pipeline name ({p.name}) to confirm")
    await services(request).pipelines.delete(ns, layer, name,
                                             drop_table=form.get("drop_table") == "on")
    return go(request, "/pipelines")


ROUTES = [run_pipeline, save_file, new_file, delete_file, save_description, save_owner,
          save_strategy_form, save_retention,
          delete_pipeline]
