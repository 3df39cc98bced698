"""Publish-time ref() cycle detection over real pipeline rows and stored code."""

from __future__ import annotations

from pathlib import Path

from rat.core.events import EventBus
from rat.core.specs import StorageSpec
from rat.db.database import Database
from rat.engine.catalog import CatalogSpec, IcebergTables
from rat.lineage.service import LineageService
from rat.pipelines.models import PipelineCreate
from rat.pipelines.service import PipelinesService
from rat.storage.base import Storage
from rat.storage.local import LocalStore
from rat.tables.service import TableRegistry


async def test_a_publish_that_closes_a_ref_cycle_is_reported(db: Database,
                                                             tmp_path: Path) -> None:
    storage = Storage(LocalStore(tmp_path))
    events = EventBus()
    pipelines = PipelinesService(db, storage, events)
    spec = CatalogSpec(type="sql", uri="postgresql+psycopg://unused", name="rat",
                       warehouse=str(tmp_path / "_warehouse"),
                       storage=StorageSpec(kind="local", root=str(tmp_path)))
    lineage = LineageService(db, storage, TableRegistry(IcebergTables(spec), events), events)
    for name, source in (("a", "SELECT * FROM {{ ref('silver.b') }}"),
                         ("b", "SELECT * FROM {{ ref('gold.c') }}"), ("c", "SELECT 1 AS x")):
        layer = "gold" if name == "c" else "silver"
        await pipelines.create(PipelineCreate(layer=layer, name=name, source=source))

    closing = {"pipeline.sql": "SELECT * FROM {{ ref('silver.a') }}"}
    assert await lineage.publish_errors("default", "gold", "c", closing) == [
        "ref() cycle: default.gold.c -> default.silver.a -> default.silver.b -> default.gold.c"
        " (each pipeline reads the next one's table)"]
    python = {"pipeline.py": "result = ref('default.silver.a')\n"}
    assert await lineage.publish_errors("default", "gold", "c", python) != []
    assert await lineage.publish_errors("default", "gold", "c", {"pipeline.sql": "SELECT 2"}) \
        == []
    own = {"pipeline.sql": "SELECT * FROM {{ ref('gold.c') }}"}
    assert await lineage.publish_errors("default", "gold", "c", own) == [], "self-ref is `this`"
    other_ns = {"pipeline.sql": "SELECT * FROM {{ ref('other.silver.a') }}"}
    assert await lineage.publish_errors("default", "gold", "c", other_ns) == []
