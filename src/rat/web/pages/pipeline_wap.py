"""Write-audit-publish from the pipeline page.

Preview, publish (validation errors at their line in the editor), versions with diffs, rollback
and "load into editor".
"""

import difflib
import re
from typing import Any

import msgspec
from litestar import Request, Response, get, post

from rat.core.errors import RatError, ValidationFailed
from rat.pipelines.models import Pipeline, PublishRequest, RollbackRequest
from rat.pipelines.preview import PreviewRequest
from rat.runs.models import RunCreate
from rat.web.access import access, read_scope, user_id
from rat.web.deps import Services, int_param, request_id, services
from rat.web.grid import exact_decimals
from rat.web.pages.forms import form_data, go
from rat.web.pages.pipeline_paths import TABS, P, pipeline_url
from rat.web.templating import is_fragment, render

_LINE = re.compile(r"^line (\d+):")


def validation_files(p: Pipeline, validation: dict[str, Any]) -> list[dict[str, Any]]:
    """Per-file messages with paths relative to the pipeline and `line N:` prefixes located."""
    out = []
    for f in validation.get("files", []):
        messages = [*f.get("errors", []), *f.get("warnings", [])]
        lines = {m: int(found.group(1)) for m in messages if (found := _LINE.match(m))}
        out.append({"rel": str(f.get("path", "")).removeprefix(p.prefix), "lines": lines,
                    "errors": f.get("errors", []), "warnings": f.get("warnings", [])})
    return out


async def preview_context(svc: Services, p: Pipeline,
                          request: Request[Any, Any, Any]) -> dict[str, Any]:
    """The sample files of the zones this pipeline reads, for the sample picker."""
    graph = await svc.lineage.graph(p.namespace, await read_scope(request))
    me = f"pipeline:{p.namespace}.{p.layer}.{p.name}"
    zones = [e.source.split(".", 1)[1] for e in graph.edges
             if e.target == me and e.type == "landing_input"]
    samples = {z: [s.path.rsplit("/", 1)[-1] for s in
                   (await svc.landing.samples(p.namespace, z)).files] for z in zones}
    return {"preview": None, "preview_error": None, "samples": samples,
            "preview_form": {"limit": "100", "run_tests": ""}}


async def versions_context(svc: Services, p: Pipeline,
                           request: Request[Any, Any, Any]) -> dict[str, Any]:
    page = await svc.versions.list(p.namespace, p.layer, p.name, limit=50)
    chosen = request.query_params.get("version")
    number = int_param(chosen, "version", 0) if chosen else \
        (page.versions[0].version_number if page.versions else 0)
    return {"versions": page.versions, "selected": number, "rollback_error": None,
            "diff": await version_diff(svc, p, number, request.query_params.get("against"))}


async def _files_of(svc: Services, p: Pipeline, number: int | None) -> dict[str, str]:
    if number is None:
        return await svc.pipelines.draft_files(p)
    version = await svc.versions.get(p.namespace, p.layer, p.name, number, include_content=True)
    return {f.path: f.content for f in version.files or []}


async def version_diff(svc: Services, p: Pipeline, number: int,
                       against: str | None) -> dict[str, Any] | None:
    """Unified diff of version `number` against the previous version or the draft."""
    if number < 1:
        return None
    other = None if against == "draft" else (number - 1 if number > 1 else 0)
    new = await _files_of(svc, p, number)
    old = {} if other == 0 else await _files_of(svc, p, other)
    if other is None:
        old, new = new, old
    files = []
    for path in sorted(set(old) | set(new)):
        lines = list(difflib.unified_diff(old.get(path, "").splitlines(),
                                          new.get(path, "").splitlines(), lineterm="", n=2))
        if lines:
            files.append({"path": path, "lines": lines[2:]})
    label = "draft" if other is None else f"v{other}" if other else "nothing"
    return {"number": number, "against": label, "files": files,
            "from": f"v{number}" if other is None else label,
            "to": "draft" if other is None else f"v{number}"}


async def _tab(request: Request[Any, Any, Any], p: Pipeline, tab: str, block: str, *,
               status: int = 200, **override: Any) -> Response[str]:
    # Imported here: rat.web.pages.pipeline imports this module for its tab loaders.
    from rat.web.pages.pipeline import tab_context

    ctx = {**await tab_context(request, p, tab), **override}
    return render(request, f"pipelines/tab_{tab}.html", block=block, status=status, p=p,
                  tab=tab, tabs=TABS, base=pipeline_url(p), **ctx)


@post(P + "/preview", name="pages:pipeline:preview", include_in_schema=False,
      opt=access("W", "pipeline"))
async def preview(request: Request[Any, Any, Any], ns: str, layer: str,
                  name: str) -> Response[Any]:
    """Dry run of the draft (or of `code` from the editor); errors come back inline."""
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    form = await form_data(request)
    # From the code tab the editor's text (field `content`) replaces the entry file.
    tab = "code" if "content" in form else "preview"
    code = form.get("content") if form.get("path", "").startswith("pipeline.") else None
    try:
        body = PreviewRequest(
            limit=int_param(form.get("limit"), "limit", 100), code=code,
            run_tests=form.get("run_tests") == "on",
            sample_files=[k.removeprefix("sample:") for k in form if k.startswith("sample:")]
            or None)
        raw = await svc.preview.preview(ns, layer, name, body)
        result = msgspec.json.decode(raw)
        exact_decimals(raw, ((c["name"], c["type"]) for c in result.get("columns") or []),
                       result.get("rows") or [])
    except RatError as exc:
        return await _tab(request, p, tab, "preview_result", status=422, preview=None,
                          preview_error=exc.message, preview_form=form)
    return await _tab(request, p, tab, "preview_result", preview=result, preview_error=None,
                      preview_form=form)


@post(P + "/publish", name="pages:pipeline:publish", include_in_schema=False,
      opt=access("W", "pipeline"))
async def publish(request: Request[Any, Any, Any], ns: str, layer: str,
                  name: str) -> Response[Any]:
    """Publish the draft; with `then=run` also start a run of the new version."""
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    form = await form_data(request)
    try:
        result = await svc.versions.publish(ns, layer, name,
                                            PublishRequest(message=form.get("message", "")),
                                            created_by=user_id(request))
    except ValidationFailed as exc:
        return _publish_page(request, p, status=422, message=form.get("message", ""),
                             files=validation_files(p, exc.extra.get("validation", {})),
                             error="Not published: fix the errors below.")
    except RatError as exc:
        return _publish_page(request, p, status=422, message=form.get("message", ""),
                             files=[], error=exc.message)
    if form.get("then") == "run":
        run = await svc.runs.create(RunCreate(namespace=ns, layer=layer, pipeline=name),
                                    request_id=request_id(request))
        return go(request, f"/runs/{run.run_id}")
    if not is_fragment(request):
        return go(request, pipeline_url(p, "versions"))
    p = await svc.pipelines.get(ns, layer, name)
    return _publish_page(request, p, result=result, message="", error=None,
                         files=validation_files(p, result.validation))


@get(P + "/publish", name="pages:pipeline:publish-form", include_in_schema=False,
     opt=access("R", "pipeline"))
async def publish_form(request: Request[Any, Any, Any], ns: str, layer: str,
                       name: str) -> Response[str]:
    """The publish form as a page (the dialog needs JavaScript)."""
    p = await services(request).pipelines.get(ns, layer, name)
    return _publish_page(request, p, message="", files=[], error=None)


def _publish_page(request: Request[Any, Any, Any], p: Pipeline, *, status: int = 200,
                  **ctx: Any) -> Response[str]:
    ctx.setdefault("result", None)
    return render(request, "pipelines/publish.html", block="publish_result", status=status,
                  p=p, base=pipeline_url(p), **ctx)


@post(P + "/rollback", name="pages:pipeline:rollback", include_in_schema=False,
      opt=access("W", "pipeline", escalate=("restore_data",)))
async def rollback(request: Request[Any, Any, Any], ns: str, layer: str,
                   name: str) -> Response[Any]:
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    form = await form_data(request)
    try:
        await svc.versions.rollback(ns, layer, name, RollbackRequest(
            version=int_param(form.get("version"), "version", 0),
            message=form.get("message") or None, restore_data=form.get("restore_data") == "on"),
            created_by=user_id(request))
    except RatError as exc:
        return await _tab(request, p, "versions", "versions_list", status=422,
                          rollback_error=exc.message)
    return go(request, pipeline_url(p, "versions"))


@post(P + "/versions/{number:int}/load", name="pages:pipeline:load", include_in_schema=False,
      opt=access("W", "pipeline"))
async def load_version(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                       number: int) -> Response[Any]:
    """Replace the draft with a version's files, then open the editor."""
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    files = await _files_of(svc, p, number)
    for rel, content in files.items():
        await svc.files.write(p.prefix + rel, content)
    for rel in set(await svc.pipelines.draft_files(p)) - set(files):
        await svc.files.delete(p.prefix + rel)
    return go(request, pipeline_url(p, "code"))


ROUTES = [preview, publish, publish_form, rollback, load_version]
