"""Settings: what this RAT is running on (version, edition, storage, catalog, data dir)."""

from collections.abc import Callable
from typing import Any

from litestar import Request, Response, get, post

from rat import __version__
from rat.config import Settings
from rat.core.errors import RatError
from rat.plugins.host import PluginHost
from rat.retention.models import RETENTION_KEYS, RetentionConfig
from rat.retention.service import check_values
from rat.web.access import access
from rat.web.deps import services
from rat.web.pages.forms import form_data, go
from rat.web.templating import is_fragment, render

RETENTION_HELP = {
    "runs_max_per_pipeline": "runs kept per pipeline", "runs_max_age_days": "run age (days)",
    "logs_max_age_days": "log age (days)",
    "quality_results_max_per_test": "quality results kept per test",
    "soft_delete_purge_days": "purge deleted pipelines after (days)",
    "stuck_run_timeout_minutes": "fail runs stuck for (minutes)",
    "audit_log_max_age_days": "audit log age (days)",
    "nessie_orphan_branch_max_age_hours": "drop orphan run branches after (hours)",
    "reaper_interval_minutes": "reaper runs every (minutes)",
    "iceberg_snapshot_max_age_days": "expire snapshots older than (days)",
    "iceberg_orphan_file_max_age_days": "remove orphan files older than (days)"}


def platform_facts(s: Settings, edition: str) -> list[tuple[str, str]]:
    """Label/value pairs for the settings page; never secrets or DSNs."""
    storage = (f"S3 bucket {s.s3_bucket}" + (f" at {s.s3_endpoint}" if s.s3_endpoint else "")
               + (f", prefix {s.s3_prefix}" if s.s3_prefix else "")) if s.uses_s3 else \
        f"local directory {s.data_path / 'storage'}"
    catalog = "Iceberg SQL catalog in the state database" if s.catalog_type == "sql" else \
        f"Iceberg REST catalog {s.catalog_uri}"
    database = "external Postgres" if s.database_url else f"embedded Postgres in {s.data_path / 'pg'}"
    return [("Version", __version__), ("Edition", edition), ("Storage", storage),
            ("Catalog", f"{catalog} (name {s.catalog_name})"), ("State database", database),
            ("Data directory", str(s.data_path)),
            ("Run workers", f"{s.worker_count} × {s.worker_memory_limit}"),
            ("Query workers", f"{s.query_workers} × {s.query_memory_limit}, timeout "
                              f"{s.query_timeout_seconds} s"),
            ("Upload limit", f"{s.upload_max_bytes} bytes"),
            ("Scheduler", "on" if s.scheduler_enabled else "off")]


def retention_values(form: dict[str, str], keys: tuple[str, ...]) -> dict[str, Any]:
    """Non-empty fields of a retention form as the service takes them.

    Digits become integers; anything else stays text, so the service's check names the field.
    """
    return {k: int(v) if v.strip().isdigit() else v for k, v in form.items()
            if k in keys and v.strip()}


def retention_errors(values: dict[str, Any],
                     check: Callable[[dict[str, Any]], object]) -> dict[str, str]:
    """Every bad field with its message (the service's check stops at the first one)."""
    errors: dict[str, str] = {}
    for key, value in values.items():
        try:
            check({key: value})
        except RatError as exc:
            errors[key] = exc.message
    return errors


@get("/settings", name="pages:settings", include_in_schema=False, opt=access("any"))
async def settings_page(request: Request[Any, Any, Any]) -> Response[str]:
    edition = str(request.app.state.get("features", {}).get("edition", "community"))
    return render(request, "settings/index.html",
                  facts=platform_facts(services(request).settings, edition))


@get("/settings/plugins", name="pages:settings:plugins", include_in_schema=False,
     opt=access("any"))
async def plugins_page(request: Request[Any, Any, Any]) -> Response[str]:
    """Loaded plugins with slots, version, status and errors (configured in rat.yaml / env)."""
    host: PluginHost = request.app.state["plugins"]
    return render(request, "settings/plugins.html", plugins=host.entries(),
                  runner=host.runner_plugins())


async def _retention(request: Request[Any, Any, Any], *, block: str | None = None,
                     status: int = 200, **override: Any) -> Response[str]:
    svc = services(request)
    config = await svc.retention_settings.config()
    ctx = {"form": {k: str(getattr(config, k)) for k in RETENTION_KEYS}, "errors": {},
           "saved": False, "reaper": await svc.retention_settings.status(), "run_error": None,
           "help": RETENTION_HELP, "defaults": RetentionConfig(), **override}
    return render(request, "settings/retention.html", block=block, status=status, **ctx)


@get("/settings/retention", name="pages:settings:retention", include_in_schema=False,
     opt=access("SA"))
async def retention_page(request: Request[Any, Any, Any]) -> Response[str]:
    return await _retention(request, block="reaper_status")


@post("/settings/retention", name="pages:settings:retention:save", include_in_schema=False,
      opt=access("SA"))
async def save_retention(request: Request[Any, Any, Any]) -> Response[Any]:
    form = await form_data(request)
    values = retention_values(form, RETENTION_KEYS)
    errors = retention_errors(values, check_values)
    if errors:
        return await _retention(request, block="retention_form", status=422, form=form,
                                errors=errors)
    await services(request).retention_settings.update(values)
    if not is_fragment(request):
        return go(request, "/settings/retention")
    return await _retention(request, block="retention_form", saved=True)


@post("/settings/retention/run", name="pages:settings:retention:run", include_in_schema=False,
      opt=access("SA"))
async def run_reaper(request: Request[Any, Any, Any]) -> Response[Any]:
    """Run one reaper pass now and show its counters (409 while a pass is running: inline)."""
    try:
        await services(request).reaper.run_pass()
    except RatError as exc:
        return await _retention(request, block="reaper_status", status=422,
                                run_error=exc.message)
    if not is_fragment(request):
        return go(request, "/settings/retention")
    return await _retention(request, block="reaper_status")


ROUTES = [settings_page, plugins_page, retention_page, save_retention, run_reaper]
