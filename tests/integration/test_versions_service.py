"""Versions against real Postgres, storage and catalog: pruning to max_versions, blobs, retention."""

from __future__ import annotations

from pathlib import Path

import pytest

from rat.core.errors import Invalid, ValidationFailed
from rat.core.events import EventBus
from rat.db.database import Database
from rat.lineage.service import LineageService
from rat.pipelines.models import PipelineCreate, PublishRequest
from rat.pipelines.retention import RetentionService
from rat.pipelines.service import PipelinesService, blob_key
from rat.pipelines.versions import VersionsService
from rat.storage.base import Storage
from rat.storage.local import LocalStore
from rat.tables.service import TableRegistry
from tests.integration.wap_support import Engine


@pytest.fixture
def services(db: Database, db_dsn: str, tmp_path: Path) -> tuple[PipelinesService, VersionsService,
                                                                 Engine, Storage]:
    engine = Engine(db_dsn, tmp_path)
    storage = Storage(LocalStore(Path(engine.storage.root)))
    events = EventBus()
    pipelines = PipelinesService(db, storage, events)
    lineage = LineageService(db, storage, TableRegistry(engine.tables, events), events)
    versions = VersionsService(db, storage, pipelines, engine.tables, events, lineage)
    return pipelines, versions, engine, storage


async def test_publish_prunes_to_max_versions_and_drops_tags(
        services: tuple[PipelinesService, VersionsService, Engine, Storage], db: Database) -> None:
    pipelines, versions, engine, storage = services
    await pipelines.create(PipelineCreate(layer="silver", name="orders", source="SELECT 0 AS id"))
    pipeline = await pipelines.get("default", "silver", "orders")
    async with db.connection() as conn:
        await conn.execute("UPDATE pipelines SET max_versions = 2 WHERE id = $1", pipeline.id)
    assert engine.run({"pipeline.sql": "SELECT 0 AS id"})[0].ok
    snapshot = engine.snapshot("default.silver.orders")
    for number in range(1, 5):
        await storage.write(pipeline.prefix + "pipeline.sql", f"SELECT {number} AS id".encode())
        result = await versions.publish("default", "silver", "orders", PublishRequest())
        assert result.version == number
        engine.tables.tag("default.silver.orders", f"rat_v{number}", snapshot)
    page = await versions.list("default", "silver", "orders")
    assert [v.version_number for v in page.versions] == [4, 3]
    assert page.total == 2
    refs = engine.tables.load("default.silver.orders").metadata.refs
    assert {"rat_v3", "rat_v4"} <= set(refs)
    assert not {"rat_v1", "rat_v2"} & set(refs)
    latest = await versions.get("default", "silver", "orders", 4, include_content=True)
    assert latest.files is not None
    sql = next(f for f in latest.files if f.path == "pipeline.sql")
    assert sql.content == "SELECT 4 AS id"
    assert sql.size == 14
    assert (await storage.read(blob_key(sql.content_id))) == b"SELECT 4 AS id"


async def test_invalid_draft_creates_no_version(
        services: tuple[PipelinesService, VersionsService, Engine, Storage]) -> None:
    pipelines, versions, _engine, _storage = services
    await pipelines.create(PipelineCreate(layer="silver", name="bad", source="SELECT {{ oops"))
    with pytest.raises(ValidationFailed) as caught:
        await versions.publish("default", "silver", "bad", PublishRequest())
    report = caught.value.extra["validation"]
    assert report["valid"] is False
    assert report["files"][0]["path"] == "default/pipelines/silver/bad/pipeline.sql"
    assert (await versions.list("default", "silver", "bad")).total == 0


async def test_retention_overrides(db: Database,
                                   services: tuple[PipelinesService, VersionsService, Engine,
                                                   Storage]) -> None:
    pipelines = services[0]
    retention = RetentionService(db, pipelines)
    await pipelines.create(PipelineCreate(layer="gold", name="kept", source="SELECT 1"))
    view = await retention.get("default", "gold", "kept")
    assert view.overrides is None
    assert view.effective == view.system
    assert view.system["runs_max_per_pipeline"] == 100
    await retention.put("default", "gold", "kept", {"logs_max_age_days": 5})
    view = await retention.get("default", "gold", "kept")
    assert view.overrides == {"logs_max_age_days": 5}
    assert view.effective["logs_max_age_days"] == 5
    for bad in ({"reaper_interval_minutes": 5}, {"logs_max_age_days": 0},
                {"logs_max_age_days": "5"}):
        with pytest.raises(Invalid):
            await retention.put("default", "gold", "kept", bad)
    await retention.put("default", "gold", "kept", {})
    assert (await retention.get("default", "gold", "kept")).overrides is None
