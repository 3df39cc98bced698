"""Preview (dry run of the draft) and ad-hoc test runs, executed in the preview worker pool.

Runs can never starve previews: they have their own pool (`RAT_PREVIEW_WORKERS`). A preview that
exceeds `RAT_PREVIEW_TIMEOUT_SECONDS` has its worker killed and answers with an `error`.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from typing import Any

import msgspec

from rat.config import Settings
from rat.core.errors import DeadlineExceeded, Invalid, Unavailable
from rat.core.ids import slug
from rat.core.specs import Confinement, EngineLimits, RunSpec, StorageSpec
from rat.core.timefmt import utcnow
from rat.engine.catalog import IcebergTables
from rat.engine.preview import PreviewOutput, PreviewSpec, TestsOutput, response_json
from rat.pipelines.models import Pipeline, entry_filename
from rat.pipelines.service import MAX_SOURCE_BYTES, PipelinesService
from rat.plugins.protocols import ReadScope
from rat.runtime.jobaccess import JobAccess
from rat.runtime.workers import JobFailed, WorkerDied, WorkerPool
from rat.storage.base import Storage

WORKER_WAIT_SECONDS = 10.0
TESTS_TIMEOUT_SECONDS = 300.0
MAX_LIMIT = 1000


class PreviewRequest(msgspec.Struct, kw_only=True):
    limit: int | None = None
    sample_files: list[str] | None = None
    code: str | None = None
    run_tests: bool = False


class _Stopped(Exception):
    """The preview worker was killed (timeout) or died; it must not go back to the pool."""


def preview_limit(body_limit: int | None, query_limit: int | None) -> int:
    limit = body_limit if body_limit is not None else query_limit
    if limit is None:
        return 100
    if not 1 <= limit <= MAX_LIMIT:
        raise Invalid("limit must be between 1 and 1000")
    return limit


class PreviewService:
    def __init__(self, *, settings: Settings, pool: WorkerPool, pipelines: PipelinesService,
                 tables: IcebergTables, storage: Storage, storage_spec: StorageSpec,
                 warehouse: str, access: JobAccess | None = None) -> None:
        self.settings = settings
        self.pool = pool
        self.pipelines = pipelines
        self.tables = tables
        self.storage = storage
        self.storage_spec = storage_spec
        self.warehouse = warehouse
        self.access = access

    async def preview(self, namespace: str, layer: str, name: str, req: PreviewRequest,
                      query_limit: int | None = None) -> bytes:
        """The preview response as JSON bytes (encoded once, in the worker)."""
        limit = preview_limit(req.limit, query_limit)
        pipeline = await self.pipelines.get(namespace, layer, name)
        files = await self.pipelines.draft_files(pipeline)
        if req.code is not None:
            if len(req.code.encode()) > MAX_SOURCE_BYTES:
                raise Invalid("code must be at most 1 MiB")
            files[_entry(files, pipeline)] = req.code
        scratch = Path(self.settings.data_path) / "tmp" / "preview" / uuid.uuid4().hex
        scope, readable, jail = await self._confine(pipeline, scratch)
        job = PreviewSpec(run=self._spec(pipeline, files, scratch, readable), limit=limit,
                          run_tests=req.run_tests)
        landing = _Samples(self, scratch, req.sample_files, pipeline, scope)
        try:
            body = await self._call("preview", msgspec.msgpack.encode(job), landing.rpc,
                                    self.settings.preview_timeout_seconds, jail)
        except _Stopped as exc:
            return response_json(PreviewOutput(error=str(exc)))
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, ignore_errors=True)
        return body

    async def run_tests(self, pipeline: Pipeline, files: dict[str, str]) -> TestsOutput:
        """The tests in `files` against the published table (at most 5 minutes)."""
        scratch = Path(self.settings.data_path) / "tmp" / "preview" / uuid.uuid4().hex
        scope, readable, jail = await self._confine(pipeline, scratch)
        spec = self._spec(pipeline, files, scratch, readable)
        try:
            body = await self._call("quality", msgspec.msgpack.encode(spec),
                                    _Samples(self, scratch, None, pipeline, scope).rpc,
                                    TESTS_TIMEOUT_SECONDS, jail)
        except _Stopped as exc:
            raise DeadlineExceeded(str(exc)) from None
        finally:
            await asyncio.to_thread(shutil.rmtree, scratch, ignore_errors=True)
        return msgspec.msgpack.decode(body, type=TestsOutput)

    async def _confine(self, pipeline: Pipeline, scratch: Path,
                       ) -> tuple[ReadScope | None, tuple[str, ...], Confinement | None]:
        """Previews run with the pipeline owner's rights, like its runs."""
        if self.access is None:
            return None, (), None
        scope = await self.access.scope(pipeline)
        readable = self.access.readable(scope, pipeline)
        return scope, readable, await self.access.jail(pipeline, readable, scratch)

    def _spec(self, pipeline: Pipeline, files: dict[str, str], scratch: Path,
              readable: tuple[str, ...]) -> RunSpec:
        s = self.settings
        return RunSpec(
            run_id=str(uuid.uuid4()), attempt=1, namespace=pipeline.namespace,
            layer=pipeline.layer, name=pipeline.name,
            pipeline_type="python" if "pipeline.py" in files else "sql", version_number=None,
            files=files, run_started_at=utcnow().isoformat(timespec="microseconds"),
            storage=self.storage_spec, warehouse=self.warehouse, readable=readable,
            limits=EngineLimits(memory_limit=s.worker_memory_limit, threads=s.worker_threads,
                                scratch_dir=str(scratch),
                                quality_timeout_seconds=s.quality_test_timeout_seconds))

    async def _call(self, job: str, body: bytes, rpc: Any, seconds: float,
                    jail: Confinement | None) -> bytes:
        if not await self.pool.acquire_within(WORKER_WAIT_SECONDS):
            raise Unavailable("no preview worker is free; try again shortly")
        try:
            async with self.pool.lease() as worker:
                try:
                    return await asyncio.wait_for(worker.call(job, body, rpc=rpc, jail=jail),
                                                  seconds)
                except TimeoutError:
                    worker.kill()
                    raise _Stopped(f"timed out after {seconds:g} s and was stopped") from None
        except (WorkerDied, JobFailed) as exc:
            raise _Stopped(f"preview worker failed: {exc}") from None

    async def table_state(self, ident: str, pipeline: Pipeline | None = None,
                          scope: ReadScope | None = None) -> Any:
        if pipeline is not None and not JobAccess.can_read(scope, pipeline, ident):
            return None  # not readable by the owner: "does not exist", like the API's 404
        state = await asyncio.to_thread(self.tables.state, ident)
        return None if state is None else msgspec.to_builtins(state)


def _entry(files: dict[str, str], pipeline: Pipeline) -> str:
    for name in ("pipeline.py", "pipeline.sql"):
        if name in files:
            return name
    return entry_filename(pipeline.type)


class _Samples:
    """Answers a preview worker's requests; copies a zone's sample files into scratch."""

    def __init__(self, service: PreviewService, scratch: Path, chosen: list[str] | None,
                 pipeline: Pipeline, scope: ReadScope | None) -> None:
        self.service = service
        self.scratch = scratch
        self.chosen = chosen
        self.pipeline = pipeline
        self.scope = scope

    async def rpc(self, method: str, body: Any) -> Any:
        if method == "table_state":
            return await self.service.table_state(str(body), self.pipeline, self.scope)
        if method == "preview_landing":
            namespace, zone = (slug(str(v), kind) for v, kind in zip(body, ("namespace", "zone"),
                                                                      strict=True))
            if namespace != self.pipeline.namespace:
                raise PermissionError("landing_zone() reads zones of the pipeline's namespace")
            return await self.landing(namespace, zone)
        raise ValueError(f"unknown request {method!r}")

    async def landing(self, namespace: str, zone: str) -> dict[str, str | None]:
        storage = self.service.storage
        prefix = f"{namespace}/landing/{zone}/_samples/"
        samples = {o.key[len(prefix):]: o.key for o in await storage.list(prefix, recursive=False)}
        wanted = [n for n in samples if self.chosen is None or n in self.chosen]
        missing = [n for n in self.chosen or [] if n not in samples]
        if not wanted:
            live = self.service.storage_spec.uri(f"{namespace}/landing/{zone}/*")
            return {"glob": live, "warning": f"landing zone {zone!r} has no sample files"
                    + (f" named {', '.join(missing)}" if missing else "")
                    + ": previewing its live files"}
        target = self.scratch / "landing" / zone
        target.mkdir(parents=True, exist_ok=True)
        for filename in wanted:
            data = await storage.read(samples[filename])
            await asyncio.to_thread((target / filename).write_bytes, data)
        warning = f"sample files not found: {', '.join(missing)}" if missing else None
        return {"glob": f"{target}/*", "warning": warning}
