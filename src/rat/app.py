"""Composition root: the only module that knows every part. Builds the runtime and the Litestar app."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import functools
import logging
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import msgspec
from litestar import Litestar, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import State
from litestar.static_files import create_static_files_router

from rat.config import MIGRATIONS_DIR, STATIC_DIR, ConfigError, Settings, parse_size
from rat.core.events import Event, EventBus
from rat.core.metrics import Registry
from rat.core.specs import StorageSpec
from rat.db.database import Database, create_pool
from rat.db.embedded import EmbeddedPostgres
from rat.db.migrate import apply_migrations
from rat.engine.catalog import CatalogSpec, IcebergTables, open_catalog
from rat.files.service import FilesService
from rat.landing.archive import Archiver
from rat.landing.service import LandingService
from rat.lineage.service import LineageService
from rat.namespaces.service import NamespacesService
from rat.ops.fence import deletion_window
from rat.pipelines.preview import PreviewService
from rat.pipelines.retention import RetentionService
from rat.pipelines.service import PipelinesService
from rat.pipelines.versions import VersionsService
from rat.plugins.host import RUNNER_ENV, FatalPluginError, PluginHost
from rat.quality.service import QualityService
from rat.query.service import QueryService
from rat.retention.reaper import Reaper
from rat.retention.service import RetentionSettings
from rat.runs.service import RunsService
from rat.runtime.dispatcher import Dispatcher
from rat.runtime.jobaccess import JobAccess
from rat.runtime.leader import Leader
from rat.runtime.sandbox import Limits as SandboxLimits
from rat.runtime.sandbox import Sandbox, prepare_shared_dir, probe
from rat.runtime.telemetry import Telemetry
from rat.runtime.workers import WorkerPool
from rat.schedules.firing import TriggerFiring
from rat.schedules.service import SchedulesService
from rat.schedules.triggers import TriggersService
from rat.storage.base import ObjectStore, Storage
from rat.storage.local import LocalStore
from rat.storage.s3 import S3Store
from rat.tables.service import TableRegistry, TablesService
from rat.web.access import build_control, guard
from rat.web.api import files as api_files
from rat.web.api import health as api_health
from rat.web.api import landing as api_landing
from rat.web.api import lineage as api_lineage
from rat.web.api import metrics as api_metrics
from rat.web.api import namespaces as api_namespaces
from rat.web.api import pipelines as api_pipelines
from rat.web.api import platform as api_platform
from rat.web.api import publish as api_publish
from rat.web.api import quality as api_quality
from rat.web.api import query as api_query
from rat.web.api import retention as api_retention
from rat.web.api import runs as api_runs
from rat.web.api import schedules as api_schedules
from rat.web.api import tables as api_tables
from rat.web.api import triggers as api_triggers
from rat.web.deps import Services
from rat.web.errors import HANDLERS
from rat.web.middleware import install_edge
from rat.web.observe import PlatformMiddleware
from rat.web.openapi import enrich_on_startup as enrich_openapi
from rat.web.pages import ROUTES as PAGE_ROUTES

log = logging.getLogger("rat")
READY_CHECK_SECONDS = 2.0
LEASE_MONITOR_SECONDS = 5.0


def storage_spec(settings: Settings) -> StorageSpec:
    if not settings.uses_s3:
        return StorageSpec(kind="local", root=str(settings.data_path / "storage"))
    return StorageSpec(kind="s3", bucket=settings.s3_bucket, prefix=settings.s3_prefix,
                       endpoint=settings.s3_endpoint, region=settings.s3_region,
                       access_key=settings.s3_access_key, secret_key=settings.s3_secret_key,
                       use_ssl=settings.s3_secure, path_style=settings.s3_path_style)


def open_store(spec: StorageSpec) -> ObjectStore:
    if spec.kind == "local":
        return LocalStore(Path(spec.root))
    return S3Store(bucket=spec.bucket, endpoint=spec.endpoint, access_key=spec.access_key,
                   secret_key=spec.secret_key, region=spec.region, prefix=spec.prefix,
                   secure=spec.use_ssl)


def open_storage(settings: Settings, plugins: PluginHost | None = None,
                 ) -> tuple[StorageSpec, ObjectStore]:
    """The storage the engine addresses and the store the platform uses.

    A `storage` plugin's when one is selected (its failure stops start-up), else local or S3.
    """
    provider = plugins.slot("storage") if plugins is not None else None
    if provider is None:
        spec = storage_spec(settings)
        return spec, open_store(spec)
    try:
        return provider.storage_spec(settings), provider.open_store(settings)
    except Exception as exc:
        owner = plugins.slot_owner("storage") if plugins is not None else None
        raise FatalPluginError(f"plugin {owner} (slot storage) failed to open its store: "
                               f"{type(exc).__name__}: {exc}") from None


def job_memory(memory_limit: int) -> int:
    """Address space a job may add to its warm worker: DuckDB's limit plus allocator headroom."""
    return 2 * memory_limit + (1 << 30)


def probe_sandbox(settings: Settings, spec: StorageSpec, *, pro: bool) -> Sandbox:
    """The sandbox this host offers.

    Without one, RAT_SANDBOX=on stops start-up, and so does the Pro edition (several users'
    pipelines must not share the server's rights) unless RAT_SANDBOX=off says so explicitly.
    """
    limits = SandboxLimits(
        memory_bytes=job_memory(settings.worker_memory_bytes),
        cpu_seconds=settings.worker_cpu_seconds, max_processes=settings.worker_max_processes,
        max_open_files=settings.worker_max_open_files,
        scratch_bytes=parse_size(settings.worker_scratch_limit))
    box = probe(settings.sandbox, storage=spec, data_path=settings.data_path, limits=limits)
    if not box.enabled and (settings.sandbox == "on" or (pro and settings.sandbox == "auto")):
        why = "RAT_SANDBOX=on" if settings.sandbox == "on" else \
            "the Pro edition needs the pipeline sandbox (or RAT_SANDBOX=off)"
        raise ConfigError(f"{why}, but {'; '.join(box.missing)}")
    (log.info if box.enabled else log.warning)(box.summary())
    return box


def sqlalchemy_url(dsn: str) -> str:
    """Pyiceberg's SqlCatalog speaks SQLAlchemy; point it at the same database via psycopg."""
    scheme, rest = dsn.split("://", 1)
    if scheme not in ("postgres", "postgresql"):
        raise ValueError("RAT_DATABASE_URL must be a postgresql:// URL")
    return f"postgresql+psycopg://{rest}"


def secret_key(settings: Settings) -> str:
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_path / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


class Runtime:
    """Everything started at application start-up and stopped, in reverse, at shutdown."""

    def __init__(self, settings: Settings, plugins: PluginHost | None = None) -> None:
        self.settings = settings
        self.plugins = plugins or PluginHost([])
        os.environ[RUNNER_ENV] = self.plugins.runner_env()
        self.embedded: EmbeddedPostgres | None = None
        self.db: Database | None = None
        self.events = EventBus()
        self.spec, store = open_storage(settings, self.plugins)
        self.storage = Storage(store)
        self.warehouse = settings.catalog_warehouse or self.spec.uri("_warehouse")
        self.sandbox = probe_sandbox(settings, self.spec,
                                     pro=self.plugins.features()["edition"] == "pro")
        executor = self.plugins.slot("executor")
        self.run_pool: WorkerPool = executor if executor is not None else \
            self._pool("run", settings.worker_count, ("rat.plugins.runner",))
        # Console workers keep their DuckDB session between queries: confined once, as a whole.
        self.query_pool = self._pool("query", settings.query_workers, ("rat.engine.query",),
                                     memory=settings.query_memory_limit, resident=True)
        self.preview_pool = self._pool("preview", settings.preview_workers,
                                       ("rat.plugins.runner", "rat.engine.preview"))
        self.tables: IcebergTables | None = None
        self.job_access: JobAccess | None = None
        self.dispatcher: Dispatcher | None = None
        self.leader: Leader | None = None
        self.services: Services | None = None
        self.metrics = Registry()
        self.telemetry: Telemetry | None = None

    def _pool(self, kind: str, size: int, modules: tuple[str, ...], *,
              memory: str | None = None, resident: bool = False) -> WorkerPool:
        """A worker pool inside the sandbox; by default a job reads storage and its scratch."""
        box = self.sandbox
        scratch = str(self.settings.data_path / "tmp")
        read = [self.spec.root] if self.spec.kind == "local" else []
        jail = box.jail(read=read, write=[scratch],
                        memory_bytes=job_memory(parse_size(memory)) if memory else None)
        if resident:  # its CPU time adds up over queries; the query timeout bounds each one
            jail = msgspec.structs.replace(jail, cpu_seconds=0)
        return WorkerPool(kind, size, modules, sandbox=box, jail=jail, resident=resident,
                          silence_seconds=float(self.settings.lease_seconds))

    async def start_database(self) -> str:
        dsn = self.settings.database_url
        if not dsn:
            self.embedded = EmbeddedPostgres(self.settings.data_path / "pg")
            dsn = await asyncio.to_thread(self.embedded.start)
            atexit.register(self.embedded.stop)
        await apply_migrations(dsn, MIGRATIONS_DIR)
        self.db = Database(await create_pool(dsn, self.settings.db_pool_size), dsn)
        return dsn

    def _catalog(self, dsn: str) -> IcebergTables:
        s = self.settings
        uri = sqlalchemy_url(dsn) if s.catalog_type == "sql" else s.catalog_uri
        provider = self.plugins.slot("catalog")
        return IcebergTables(CatalogSpec(type=s.catalog_type, uri=uri, name=s.catalog_name,
                                         warehouse=self.warehouse, storage=self.spec,
                                         token=s.catalog_token,
                                         credential=s.catalog_credential),
                             provider.open_catalog if provider is not None else open_catalog)

    async def _open_plugin_catalog(self, tables: IcebergTables) -> None:
        """A `catalog` plugin that cannot open its catalog stops start-up (product §14)."""
        owner = self.plugins.slot_owner("catalog")
        if owner is None:
            return
        try:
            await asyncio.to_thread(tables.check)
        except Exception as exc:
            raise FatalPluginError(f"plugin {owner} (slot catalog) failed to open its catalog: "
                                   f"{type(exc).__name__}: {exc}") from None

    async def start(self) -> Services:
        tmp = self.settings.data_path / "tmp"
        for sub in ("", "runs", "preview", "query"):
            prepare_shared_dir(tmp / sub, self.sandbox)  # job scratch lives under these
        dsn = await self.start_database()
        assert self.db is not None  # noqa: S101
        self.tables = self._catalog(dsn)
        await self._open_plugin_catalog(self.tables)
        await asyncio.gather(self.run_pool.start(), self.query_pool.start(),
                             self.preview_pool.start())
        self.services = self._services(self.db, self.tables)
        await self.plugins.start(self, self.events)
        self.dispatcher = self._dispatcher(self.db, self.tables, self.services)
        await self.dispatcher.start()
        self.leader = Leader(dsn, enabled=self.settings.scheduler_enabled,
                             tick=float(self.settings.scheduler_tick_seconds),
                             lease=float(self.settings.lease_seconds))
        self.leader.add("lease_monitor", lambda: LEASE_MONITOR_SECONDS, self.dispatcher.reconcile)
        self._automation_duties(self.leader, self.services)
        await self.leader.start()
        dispatcher = self.dispatcher
        self.telemetry = Telemetry(self.metrics, db=self.db, pools=[self.run_pool, self.query_pool],
                                   leader=self.leader, events=self.events,
                                   active_runs=lambda: dispatcher.active_count)
        self.telemetry.plugin_health = lambda: {e.name: e.healthy for e in self.plugins.entries()}
        self.telemetry.start()
        self.services.metrics = self.telemetry.scrape
        return self.services

    def _services(self, db: Database, tables: IcebergTables) -> Services:
        events = self.events
        pipelines = PipelinesService(db, self.storage, events)
        runs = RunsService(db, pipelines, events)
        registry = TableRegistry(tables, events)
        query = QueryService(self.settings, self.query_pool, registry, self.spec, self.warehouse)
        self.job_access = JobAccess(authorizer=self.plugins.slot("authorizer"), tables=tables,
                                    sandbox=self.sandbox, storage=self.spec,
                                    warehouse=self.warehouse)
        preview = PreviewService(settings=self.settings, pool=self.preview_pool,
                                 pipelines=pipelines, tables=tables, storage=self.storage,
                                 storage_spec=self.spec, warehouse=self.warehouse,
                                 access=self.job_access)
        namespaces = NamespacesService(
            db, self.storage, events, pipelines, tables, registry,
            warehouse_key=None if self.settings.catalog_warehouse else "_warehouse",
            enabled="namespaces" in self.plugins.capabilities)
        lineage = LineageService(db, self.storage, registry, events)
        landing = LandingService(db, self.storage, self.spec, pipelines, events)
        retention_settings = RetentionSettings(db)
        return Services(settings=self.settings, pipelines=pipelines, runs=runs,
                        files=FilesService(db, self.storage, pipelines, events),
                        tables=TablesService(db, registry, query), query=query,
                        namespaces=namespaces, lineage=lineage, readiness=self.readiness,
                        versions=VersionsService(db, self.storage, pipelines, tables, events,
                                                 lineage),
                        preview=preview,
                        quality=QualityService(db, self.storage, pipelines, preview, events),
                        retention=RetentionService(db, pipelines), landing=landing,
                        schedules=SchedulesService(
                            db, pipelines, runs, events, poke=self._poke,
                            tick_seconds=self.settings.scheduler_tick_seconds),
                        triggers=TriggersService(db, pipelines, landing),
                        firing=TriggerFiring(db, pipelines, runs, events),
                        retention_settings=retention_settings,
                        reaper=Reaper(db=db, storage=self.storage, tables=tables,
                                      retention=retention_settings, events=events,
                                      archiver=Archiver(db, self.storage, pipelines),
                                      deletion_window=functools.partial(deletion_window, db)))

    def _poke(self) -> None:
        if self.leader is not None:
            self.leader.poke()

    def _automation_duties(self, leader: Leader, svc: Services) -> None:
        """Landing hooks, run-completion subscribers and the scheduler/trigger/reaper duties."""
        svc.landing.on_file_added.append(svc.firing.on_file_added)
        self.events.subscribe(svc.firing.on_run_completed, ("run_completed",))
        self.events.subscribe(svc.reaper.archiver.on_run_completed, ("run_completed",))
        tick = float(self.settings.scheduler_tick_seconds)
        leader.add("scheduler", svc.schedules.interval, svc.schedules.tick)
        leader.add("triggers", lambda: tick, svc.firing.tick)
        leader.add("reaper", svc.reaper.interval, svc.reaper.duty)

    def _dispatcher(self, db: Database, tables: IcebergTables, svc: Services) -> Dispatcher:
        dispatcher = Dispatcher(settings=self.settings, db=db, pipelines=svc.pipelines,
                                tables=tables, pool=self.run_pool, events=self.events,
                                storage_spec=self.spec, warehouse=self.warehouse,
                                landing=svc.landing.unprocessed_uris, access=self.job_access)
        svc.runs.on_cancel.append(dispatcher.cancel)
        dispatcher.result_handlers.append(
            lambda ctx, result: svc.quality.record(ctx.run_id, ctx.pipeline, result.quality))

        async def cancel_deleted(event: Event) -> None:
            import uuid

            await svc.runs.cancel_pipeline_runs(uuid.UUID(event.data["pipeline_id"]),
                                                "pipeline deleted")

        self.events.subscribe(cancel_deleted, ("pipeline_deleted",))
        return dispatcher

    async def readiness(self) -> dict[str, Any]:
        async def postgres() -> None:
            assert self.db is not None  # noqa: S101
            async with self.db.connection() as conn:
                await conn.fetchval("SELECT 1")

        async def catalog() -> None:
            assert self.tables is not None  # noqa: S101
            await asyncio.to_thread(self.tables.check)

        async def workers() -> None:
            if self.run_pool.alive < 1:
                raise RuntimeError("no run worker alive")

        async def leader() -> None:
            if self.leader is None or not self.leader.is_leader:
                raise RuntimeError(self.leader.last_error if self.leader and
                                   self.leader.last_error else "not the leader")

        checks: dict[str, Callable[[], Awaitable[None]]] = {
            "postgres": postgres, "storage": self.storage.check, "catalog": catalog,
            "workers": workers, "leader": leader}
        results = await asyncio.gather(*(_probe(fn) for fn in checks.values()))
        return {**dict(zip(checks, results, strict=True)), "sandbox": self.sandbox.status()}

    def drain(self) -> None:
        """First step of a graceful shutdown (SIGTERM): stop claiming runs at once."""
        if self.dispatcher is not None:
            self.dispatcher.drain(float(self.settings.shutdown_grace_seconds))

    async def stop(self) -> None:
        grace = float(self.settings.shutdown_grace_seconds)
        if self.telemetry is not None:
            await self.telemetry.stop()
        await self.plugins.stop()
        if self.leader is not None:
            await self.leader.stop()
        if self.services is not None:
            await self.services.reaper.stop()
        if self.dispatcher is not None:
            await self.dispatcher.stop(grace)
        await asyncio.gather(self.run_pool.stop(), self.query_pool.stop(),
                             self.preview_pool.stop())
        if self.services is not None:
            await self.services.reaper.archiver.drain()
        if self.db is not None:
            await self.db.close()
        if self.embedded is not None:
            await asyncio.to_thread(self.embedded.stop)
        shutil.rmtree(self.settings.data_path / "tmp" / "runs", ignore_errors=True)
        shutil.rmtree(self.settings.data_path / "tmp" / "query", ignore_errors=True)


async def _probe(fn: Callable[[], Awaitable[None]]) -> dict[str, str]:
    try:
        await asyncio.wait_for(fn(), READY_CHECK_SECONDS)
    except Exception as exc:
        return {"status": "error", "error": str(exc) or type(exc).__name__}
    return {"status": "ok"}


def api_router() -> Router:
    handlers = [*api_platform.ROUTES, *api_pipelines.ROUTES, *api_files.ROUTES, *api_runs.ROUTES,
                *api_query.ROUTES, *api_tables.ROUTES, *api_publish.ROUTES, *api_quality.ROUTES,
                *api_namespaces.ROUTES, *api_lineage.ROUTES, *api_landing.ROUTES,
                *api_schedules.ROUTES, *api_triggers.ROUTES, *api_retention.ROUTES]
    return Router(path="/api/v1", route_handlers=handlers)


def create_app(settings: Settings, *, announce: bool = False) -> Litestar:
    try:
        plugins = PluginHost.load(settings)
        runtime = Runtime(settings, plugins)
    except FatalPluginError as exc:
        raise ConfigError(str(exc)) from None
    secret = secret_key(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        try:
            app.state["services"] = await runtime.start()
            app.state["runtime"] = runtime
            app.state["access"] = build_control(plugins, runtime.db, settings, secret)
            app.state["features"] = plugins.features()
            if announce:
                log.info("RAT is running at http://%s:%s", settings.host, settings.port)
                url = f"http://{_display_host(settings.host)}:{settings.port}"
                print(f"RAT is running at {url}", flush=True)  # noqa: T201 - `make run` promises it
            yield
        except FatalPluginError as exc:
            app.state["fatal"] = str(exc)  # `rat serve` ends with this line and exit code 2
            raise
        finally:
            await runtime.stop()

    pages = PAGE_ROUTES
    static = create_static_files_router(path="/static", directories=[STATIC_DIR],
                                        include_in_schema=False)
    app = Litestar(
        route_handlers=[api_router(), *api_health.ROUTES, *api_metrics.ROUTES, *pages, static,
                        *plugins.routes()],
        lifespan=[lifespan], exception_handlers=HANDLERS,  # type: ignore[arg-type]
        middleware=[PlatformMiddleware], guards=[guard],
        on_startup=[enrich_openapi],
        state=State({"plugins": plugins}),
        csrf_config=CSRFConfig(secret=secret, exclude=["/api/", "/health"]),
        request_max_body_size=None, debug=False, logging_config=None)
    install_edge(app, settings, runtime.metrics)
    return app


def _display_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else urlsplit(f"//{host}").hostname or host  # noqa: S104
