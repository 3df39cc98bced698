"""Pipeline shapes: the API object, inputs, and layer templates for new pipelines."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec

from rat.core.ids import Layer


class LastRun(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None


class Pipeline(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    namespace: str
    layer: str
    name: str
    type: str
    s3_path: str
    description: str
    owner: str | None
    published_at: datetime | None
    published_versions: dict[str, str]
    current_version: int | None
    draft_dirty: bool
    max_versions: int
    retention_config: dict[str, Any] | None
    config: dict[str, Any] | None
    last_run: LastRun | None
    created_at: datetime
    updated_at: datetime

    @property
    def ident(self) -> str:
        return f"{self.namespace}.{self.layer}.{self.name}"

    @property
    def prefix(self) -> str:
        return self.s3_path


def pipeline_prefix(namespace: str, layer: str, name: str) -> str:
    return f"{namespace}/pipelines/{layer}/{name}/"


def from_row(row: dict[str, Any]) -> Pipeline:
    last = None
    if row.get("last_run_id"):
        last = LastRun(id=row["last_run_id"], status=row["last_run_status"],
                       started_at=row["last_run_started_at"],
                       finished_at=row["last_run_finished_at"],
                       duration_ms=row["last_run_duration_ms"])
    return Pipeline(
        id=row["id"], namespace=row["namespace"], layer=row["layer"], name=row["name"],
        type=row["type"], s3_path=pipeline_prefix(row["namespace"], row["layer"], row["name"]),
        description=row["description"], owner=row["owner"], published_at=row["published_at"],
        published_versions=row["published_versions"] or {},
        current_version=row["current_version"], draft_dirty=row["draft_dirty"],
        max_versions=row["max_versions"], retention_config=row["retention_config"],
        config=row.get("config"), last_run=last, created_at=row["created_at"],
        updated_at=row["updated_at"])


class PipelineCreate(msgspec.Struct, kw_only=True, forbid_unknown_fields=False):
    namespace: str = "default"
    layer: str = ""
    name: str = ""
    type: str = "sql"
    source: str | None = None
    unique_key: str | None = None
    description: str = ""
    merge_strategy: str | None = None


class PipelineUpdate(msgspec.Struct, kw_only=True):
    description: str | None = None
    type: str | None = None
    owner: str | None = None


class Created(msgspec.Struct, kw_only=True):
    namespace: str
    layer: str
    name: str
    s3_path: str
    files_created: list[str]


class PipelinePage(msgspec.Struct, kw_only=True):
    pipelines: list[Pipeline]
    total: int


SQL_TEMPLATES: dict[str, str] = {
    "bronze": """-- Bronze: load raw files as they landed. Create a landing zone named {name},
-- upload a CSV into it, then run this pipeline.
SELECT
    *,
    '{{{{ run_started_at }}}}'::TIMESTAMPTZ AS _loaded_at
FROM read_csv_auto('{{{{ landing_zone("{name}") }}}}')
""",
    "silver": """-- Silver: clean and conform a bronze table.
SELECT *
FROM {{{{ ref('bronze.{name}') }}}}
""",
    "gold": """-- Gold: business-level aggregates over silver tables.
SELECT count(*) AS row_count
FROM {{{{ ref('silver.{name}') }}}}
""",
}

PYTHON_TEMPLATE = '''# {layer}: a Python pipeline. Set `result` to a pyarrow Table, DuckDB relation or DataFrame.
# Globals: duckdb_conn, pa, ref, landing_zone, this, run_started_at, is_incremental, config, log.
log.info("building {name}")
result = duckdb_conn.sql("SELECT 1 AS id, 'hello' AS greeting").arrow()
'''


def entry_filename(pipeline_type: str) -> str:
    return "pipeline.py" if pipeline_type == "python" else "pipeline.sql"


def starter_source(layer: Layer, name: str, pipeline_type: str) -> str:
    if pipeline_type == "python":
        return PYTHON_TEMPLATE.format(layer=layer.capitalize(), name=name)
    return SQL_TEMPLATES[layer].format(name=name)


def starter_config(description: str, merge_strategy: str | None, unique_key: str | None) -> str:
    lines = ["# Pipeline settings. Header annotations in the entry file override keys here.",
             f"description: {msgspec.json.encode(description).decode()}",
             f"merge_strategy: {merge_strategy or 'full_refresh'}"]
    if unique_key:
        keys = [k.strip() for k in unique_key.split(",") if k.strip()]
        lines.append(f"unique_key: [{', '.join(keys)}]")
    return "\n".join(lines) + "\n"


class VersionFile(msgspec.Struct, kw_only=True):
    path: str
    content_id: str
    size: int
    content: str


class PipelineVersion(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    pipeline_id: uuid.UUID
    version_number: int
    message: str
    published_versions: dict[str, str]
    data_snapshot_id: int | None
    created_by: str | None
    created_at: datetime
    files: list[VersionFile] | msgspec.UnsetType = msgspec.UNSET


class VersionPage(msgspec.Struct, kw_only=True):
    versions: list[PipelineVersion]
    total: int


class PublishRequest(msgspec.Struct, kw_only=True):
    message: str = ""


class PublishResult(msgspec.Struct, kw_only=True):
    status: str
    version: int | None
    message: str
    versions: dict[str, str]
    validation: dict[str, Any]


class RollbackRequest(msgspec.Struct, kw_only=True):
    version: int
    message: str | None = None
    restore_data: bool = False


class RollbackResult(msgspec.Struct, kw_only=True):
    status: str
    from_version: int
    new_version: int
    message: str
    data_restored: bool
    snapshot_id: int | None
