"""Pipeline quality tab: custom and built-in tests, latest results, create/edit/delete.

"Run tests now" runs the draft tests against the published table.
"""

from typing import Any

from litestar import Request, Response, post

from rat.core.errors import RatError
from rat.pipelines.models import Pipeline
from rat.quality.models import TestCreate, TestUpdate
from rat.web.access import access
from rat.web.deps import Services, services
from rat.web.pages.forms import form_data, go
from rat.web.pages.pipeline_paths import TABS, P, pipeline_url
from rat.web.templating import render

NEW_TEST = {"name": "", "sql": "SELECT *\nFROM {{ this }}\nWHERE false", "severity": "error",
            "description": "", "tags": "", "remediation": ""}


async def quality_context(svc: Services, p: Pipeline,
                          request: Request[Any, Any, Any]) -> dict[str, Any]:
    tests = (await svc.quality.list_tests(p.namespace, p.layer, p.name)).tests
    editing = request.query_params.get("test")
    chosen = next((t for t in tests if t.name == editing and t.kind == "custom"), None)
    form = NEW_TEST if chosen is None else {
        "name": chosen.name, "sql": chosen.sql, "severity": chosen.severity,
        "description": chosen.description, "tags": ", ".join(chosen.tags),
        "remediation": chosen.remediation}
    latest = (await svc.runs.list(pipeline_id=p.id, limit=1)).runs
    results = await svc.quality.run_results(str(latest[0].id)) if latest else None
    return {"tests": tests, "editing": chosen.name if chosen else None, "test_form": form,
            "test_error": None, "results": results, "results_run": latest[0] if latest else None,
            "results_error": None, "adhoc": False}


def _tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


async def _tab(request: Request[Any, Any, Any], p: Pipeline, block: str, *, status: int = 200,
               **override: Any) -> Response[str]:
    ctx = {**await quality_context(services(request), p, request), **override}
    return render(request, "pipelines/tab_quality.html", block=block, status=status, p=p,
                  tab="quality", tabs=TABS, base=pipeline_url(p), **ctx)


@post(P + "/tests", name="pages:pipeline:test", include_in_schema=False,
      opt=access("W", "pipeline"))
async def save_test(request: Request[Any, Any, Any], ns: str, layer: str,
                    name: str) -> Response[Any]:
    """Create a test, or update it when `editing` names an existing one."""
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    form = {**NEW_TEST, **await form_data(request)}
    editing = form.get("editing") or None
    try:
        if editing:
            await svc.quality.update_test(ns, layer, name, editing, TestUpdate(
                sql=form["sql"], severity=form["severity"], description=form["description"],
                tags=_tags(form["tags"]), remediation=form["remediation"]))
        else:
            await svc.quality.create_test(ns, layer, name, TestCreate(
                name=form["name"], sql=form["sql"], severity=form["severity"],
                description=form["description"], tags=_tags(form["tags"]),
                remediation=form["remediation"]))
    except RatError as exc:
        return await _tab(request, p, "test_form", status=422, test_form=form,
                          test_error=exc.message, editing=editing)
    return go(request, pipeline_url(p, "quality"))


@post(P + "/tests/{test_name:str}/delete", name="pages:pipeline:test:delete",
      include_in_schema=False, opt=access("W", "pipeline"))
async def delete_test(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                      test_name: str) -> Response[Any]:
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    await svc.quality.delete_test(ns, layer, name, test_name)
    return go(request, pipeline_url(p, "quality"))


@post(P + "/tests/run", name="pages:pipeline:tests:run", include_in_schema=False,
      opt=access("W", "pipeline"))
async def run_tests(request: Request[Any, Any, Any], ns: str, layer: str,
                    name: str) -> Response[Any]:
    """The draft tests against the published table, now (can take a while: a spinner shows)."""
    svc = services(request)
    p = await svc.pipelines.get(ns, layer, name)
    try:
        results = await svc.quality.run_tests(ns, layer, name)
    except RatError as exc:
        return await _tab(request, p, "test_results", status=422, results_error=exc.message)
    return await _tab(request, p, "test_results", results=results, adhoc=True)


ROUTES = [save_test, delete_test, run_tests]
