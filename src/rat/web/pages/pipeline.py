"""Pipeline detail: header with Run/Publish, and one template per tab (`?tab=`)."""

from collections.abc import Awaitable, Callable
from typing import Any

from litestar import Request, Response, get

from rat.core.errors import Invalid, NotFound
from rat.engine.config import BUILTIN_STRATEGIES
from rat.pipelines.configform import load_strategy
from rat.pipelines.models import Pipeline
from rat.pipelines.retention import PIPELINE_KEYS
from rat.web.access import access
from rat.web.deps import Services, services
from rat.web.pages.pipeline_paths import TABS, P, pipeline_url
from rat.web.pages.pipeline_quality import quality_context
from rat.web.pages.pipeline_triggers import triggers_context
from rat.web.pages.pipeline_wap import preview_context, versions_context
from rat.web.pages.settings import RETENTION_HELP
from rat.web.templating import render

TabLoader = Callable[[Services, Pipeline, Request[Any, Any, Any]], Awaitable[dict[str, Any]]]


async def _overview(svc: Services, p: Pipeline, request: Request[Any, Any, Any]) -> dict[str, Any]:
    runs = await svc.runs.list(pipeline_id=p.id, limit=10)
    tables = await svc.tables.list(namespace=p.namespace, layer=p.layer, search=p.name, limit=200)
    table = next((t for t in tables.tables if t.name == p.name), None)
    return {"runs": runs.runs, "table": table}


def entry_file(files: list[str], pipeline_type: str) -> str:
    for candidate in (f"pipeline.{'py' if pipeline_type == 'python' else 'sql'}", "pipeline.sql",
                      "pipeline.py"):
        if candidate in files:
            return candidate
    return files[0] if files else ""


async def _code(svc: Services, p: Pipeline, request: Request[Any, Any, Any]) -> dict[str, Any]:
    listing = await svc.files.list(p.prefix)
    files = sorted((f.path[len(p.prefix):] for f in listing.files), key=_tree_order)
    current = request.query_params.get("file") or entry_file(files, p.type)
    if current and current not in files:
        raise NotFound(f"file {current!r} not found in this pipeline")
    content = (await svc.files.read(p.prefix + current)).content if current else ""
    return {"files": files, "current": current, "content": content, "save_error": None,
            "saved": False, "new_path": "", "new_error": None, "preview": None,
            "preview_error": None}


def _tree_order(rel: str) -> tuple[int, str]:
    """Entry file first, then config.yaml, then everything else (tests last) by path."""
    rank = 0 if rel.startswith("pipeline.") else 1 if rel == "config.yaml" else 2
    return rank + rel.count("/"), rel


async def _settings(svc: Services, p: Pipeline, request: Request[Any, Any, Any]) -> dict[str, Any]:
    """Every form of the tab with its current values; actions override the one that failed."""
    retention = await svc.retention.get(p.namespace, p.layer, p.name)
    strategy = await load_strategy(svc.files, p)
    return {"strategy": strategy.form, "strategy_annotated": strategy.annotated,
            "strategy_entry": strategy.entry, "strategy_overridden": strategy.overridden,
            "retention": retention, "retention_keys": PIPELINE_KEYS,
            "retention_help": RETENTION_HELP,
            "retention_form": {k: str(v) for k, v in (retention.overrides or {}).items()},
            "retention_errors": {}, "retention_saved": False,
            "strategies": list(BUILTIN_STRATEGIES), "strategy_errors": {},
            "strategy_saved": False, "description_form": {"description": p.description},
            "owner_form": {"owner": p.owner or ""}, "owner_error": None, "owner_saved": False,
            "description_error": None, "description_saved": False, "delete_error": None}


LOADERS: dict[str, TabLoader] = {"overview": _overview, "code": _code, "settings": _settings,
                                 "preview": preview_context, "quality": quality_context,
                                 "triggers": triggers_context, "versions": versions_context}


async def tab_context(request: Request[Any, Any, Any], p: Pipeline, tab: str) -> dict[str, Any]:
    return await LOADERS[tab](services(request), p, request)


@get(P, name="pages:pipeline", include_in_schema=False, opt=access("R", "pipeline"))
async def pipeline_page(request: Request[Any, Any, Any], ns: str, layer: str, name: str,
                        tab: str | None = None) -> Response[str]:
    current = tab or "overview"
    if current not in TABS:
        raise Invalid(f"tab must be one of {', '.join(TABS)}")
    p = await services(request).pipelines.get(ns, layer, name)
    ctx = await tab_context(request, p, current)
    return render(request, f"pipelines/tab_{current}.html", block="tab_panel", p=p, tab=current,
                  tabs=TABS, base=pipeline_url(p), **ctx)


ROUTES = [pipeline_page]
