"""Quality use cases: list/create/update/delete tests, run them ad hoc, store and read results."""

from __future__ import annotations

import uuid

import msgspec

from rat.core.errors import AlreadyExists, FailedPrecondition, Invalid, NotFound
from rat.core.events import EventBus
from rat.core.ids import parse_uuid
from rat.core.specs import QualityOutcome
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.engine import quality
from rat.engine.config import PipelineConfig, build_config
from rat.pipelines.models import Pipeline
from rat.pipelines.preview import PreviewService
from rat.pipelines.service import PipelinesService
from rat.quality.models import (
    QualityResults,
    QualityTest,
    QualityTestList,
    TestCreate,
    TestCreated,
    TestUpdate,
    result_from_row,
    results_page,
)
from rat.storage.base import Storage

Q = load_queries("rat.quality")
MAX_TEST_SQL_BYTES = 500 * 1024
MAX_DESCRIPTION = 5000


def _check_name(name: str) -> str:
    if not quality.valid_test_name(name):
        raise Invalid("testName must match ^[a-z][a-z0-9_-]*$ and be at most 128 characters")
    return name


def _check_fields(sql: str, severity: str, description: str, tags: list[str]) -> str:
    if not sql.strip():
        raise Invalid("sql must not be empty")
    if len(sql.encode()) > MAX_TEST_SQL_BYTES:
        raise Invalid("sql must be at most 500 KB")
    if severity not in quality.SEVERITIES:
        raise Invalid("severity must be error, warn or warning")
    if len(description) > MAX_DESCRIPTION:
        raise Invalid("description must be at most 5000 characters")
    if any("," in t or not t.strip() for t in tags):
        raise Invalid("tags must be non-empty and must not contain commas")
    return quality.SEVERITIES[severity]


def _test_path(name: str) -> str:
    return f"{quality.TEST_DIR}{name}.sql"


class QualityService:
    def __init__(self, db: Database, storage: Storage, pipelines: PipelinesService,
                 preview: PreviewService, events: EventBus) -> None:
        self.db = db
        self.storage = storage
        self.pipelines = pipelines
        self.preview = preview
        self.events = events

    async def list_tests(self, namespace: str, layer: str, name: str) -> QualityTestList:
        """Custom tests from the draft plus built-ins of the current version's config."""
        pipeline = await self.pipelines.get(namespace, layer, name)
        files = await self.pipelines.draft_files(pipeline)
        published = pipeline.config is not None
        config = msgspec.convert(pipeline.config, PipelineConfig) if pipeline.config \
            else _draft_config(files)
        tests = [_api_test(t, published=published) for t in quality.collect({}, config)]
        tests += [_api_test(t, published=t.path in pipeline.published_versions, prefix=pipeline.prefix)
                  for t in quality.custom_tests(files)]
        return QualityTestList(tests=tests, total=len(tests))

    async def create_test(self, namespace: str, layer: str, name: str,
                          body: TestCreate) -> TestCreated:
        pipeline = await self.pipelines.get(namespace, layer, name)
        _check_name(body.name)
        severity = _check_fields(body.sql, body.severity, body.description, body.tags)
        key = pipeline.prefix + _test_path(body.name)
        if await self.storage.stat(key) is not None:
            raise AlreadyExists(f"test {body.name!r} already exists")
        text = quality.render_test_file(body.sql, severity, body.description,
                                        [t.strip().lower() for t in body.tags], body.remediation)
        await self._write(pipeline, key, text)
        return TestCreated(name=body.name, severity=severity, path=key)

    async def update_test(self, namespace: str, layer: str, name: str, test_name: str,
                          body: TestUpdate) -> QualityTest:
        pipeline = await self.pipelines.get(namespace, layer, name)
        key = pipeline.prefix + _test_path(_check_name(test_name))
        current = await self.storage.read_optional(key)
        if current is None:
            raise NotFound(f"test {test_name!r} not found")
        parsed = quality.parse_test_file(current.decode("utf-8", errors="replace"))
        sql = body.sql if body.sql is not None else parsed.body
        tags = body.tags if body.tags is not None else parsed.tags
        description = body.description if body.description is not None else parsed.description
        severity = _check_fields(sql, body.severity or parsed.severity, description, tags)
        remediation = body.remediation if body.remediation is not None else parsed.remediation
        text = quality.render_test_file(sql, severity, description,
                                        [t.strip().lower() for t in tags], remediation)
        await self._write(pipeline, key, text)
        test = quality.custom_tests({_test_path(test_name): text})[0]
        return _api_test(test, published=False, prefix=pipeline.prefix)

    async def delete_test(self, namespace: str, layer: str, name: str, test_name: str) -> None:
        pipeline = await self.pipelines.get(namespace, layer, name)
        key = pipeline.prefix + _test_path(_check_name(test_name))
        if not await self.storage.delete(key):
            raise NotFound(f"test {test_name!r} not found")
        await self.pipelines.refresh_dirty(pipeline)

    async def _write(self, pipeline: Pipeline, key: str, text: str) -> None:
        await self.storage.write(key, text.encode())
        await self.pipelines.refresh_dirty(pipeline)
        await self.events.emit("file_uploaded", path=key, namespace=pipeline.namespace)

    async def run_tests(self, namespace: str, layer: str, name: str,
                        version: str | None = None) -> QualityResults:
        """Draft (default) or published tests against the published table; stored as ad hoc."""
        pipeline = await self.pipelines.get(namespace, layer, name)
        version = version or "draft"
        if version not in ("draft", "published"):
            raise Invalid("version must be draft or published")
        if version == "published" and pipeline.current_version is None:
            raise FailedPrecondition("the pipeline has no published version")
        state = await self.preview.table_state(pipeline.ident)
        if state is None or not state.get("published"):
            raise FailedPrecondition(f"table {pipeline.ident} does not exist yet")
        files = await self.pipelines.run_files(
            pipeline, pipeline.current_version if version == "published" else None)
        out = await self.preview.run_tests(pipeline, files)
        if out.error is not None:
            raise Invalid(out.error)
        ids = await self.record(None, pipeline, out.quality)
        rows = await self.db.many(Q["list_results_by_ids"], ids)
        return results_page([result_from_row(r) for r in rows])

    async def record(self, run_id: uuid.UUID | None, pipeline: Pipeline,
                     outcomes: list[QualityOutcome]) -> list[uuid.UUID]:
        """Store one result row per test execution (a run keeps only its latest attempt)."""
        ids = [uuid.uuid4() for _ in outcomes]
        async with self.db.transaction() as conn:
            if run_id is not None:
                await self.db.exec(Q["delete_run_results"], run_id, conn=conn)
            await self.db.executemany(Q["insert_result"], [
                (rid, run_id, pipeline.id, o.test_name, o.test_file, o.kind, o.severity, o.status,
                 o.row_count, o.sample_rows, o.message, o.compiled_sql, o.duration_ms,
                 o.description, o.tags, o.remediation) for rid, o in zip(ids, outcomes, strict=True)],
                conn=conn)
        failed = [o.test_name for o in outcomes if o.status != "pass"]
        if failed:
            await self.events.emit("quality_failed", pipeline_id=str(pipeline.id),
                                   run_id=str(run_id) if run_id else None, tests=failed,
                                   namespace=pipeline.namespace, layer=pipeline.layer,
                                   name=pipeline.name)
        return ids

    async def run_results(self, run_id: str) -> QualityResults:
        rid = parse_uuid(run_id, "runID")
        if not await self.db.val(Q["run_exists"], rid):
            raise NotFound("run not found")
        rows = await self.db.many(Q["list_run_results"], rid)
        return results_page([result_from_row(r) for r in rows])


def _draft_config(files: dict[str, str]) -> PipelineConfig:
    entry = "pipeline.py" if "pipeline.py" in files else "pipeline.sql"
    return build_config(files.get(entry, ""), files.get("config.yaml"),
                        python=entry == "pipeline.py").config


def _api_test(test: quality.TestDef, *, published: bool, prefix: str = "") -> QualityTest:
    parsed_sql = test.sql.strip("\n") if test.kind == "custom" else test.sql
    return QualityTest(name=test.name, sql=parsed_sql, severity=test.severity,
                       description=test.description, published=published, tags=list(test.tags),
                       remediation=test.remediation, kind=test.kind,
                       path=prefix + test.path if test.path else None)

