"""Wire shapes that cross the worker-process boundary, encoded with msgspec msgpack."""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class StorageSpec(msgspec.Struct, frozen=True, kw_only=True):
    """Where objects live, as the engine (DuckDB and pyiceberg) must address them."""

    kind: Literal["local", "s3"]
    root: str = ""
    bucket: str = ""
    prefix: str = ""
    endpoint: str = ""
    region: str = "us-east-1"
    access_key: str = ""
    secret_key: str = ""
    use_ssl: bool = True
    path_style: bool = True

    def uri(self, key: str) -> str:
        if self.kind == "local":
            return f"{self.root.rstrip('/')}/{key}" if key else self.root
        base = f"s3://{self.bucket}/{self.prefix.strip('/') + '/' if self.prefix.strip('/') else ''}"
        return base + key


class EngineLimits(msgspec.Struct, frozen=True, kw_only=True):
    memory_limit: str = "2GB"
    threads: int = 2
    scratch_dir: str = ""
    quality_timeout_seconds: int = 60


class Confinement(msgspec.Struct, frozen=True, kw_only=True):
    """What one job's process may reach (enforced in the worker by rat.engine.confine).

    Paths are absolute; `read_paths` also covers the interpreter and libraries. Zero disables a
    limit. `scratch_dir` and `scratch_bytes` bound the job's disk use.
    """

    landlock: bool = True
    read_paths: tuple[str, ...] = ()
    write_paths: tuple[str, ...] = ()
    restrict_network: bool = True
    connect_ports: tuple[int, ...] = ()
    memory_bytes: int = 0
    cpu_seconds: int = 0
    max_processes: int = 0
    max_open_files: int = 0
    max_file_bytes: int = 0
    scratch_dir: str = ""
    scratch_bytes: int = 0


class TableState(msgspec.Struct, frozen=True, kw_only=True):
    """A table as one run sees it: the metadata file and the snapshot it is pinned to."""

    ident: str
    metadata_location: str
    snapshot_id: int | None = None
    published: bool = True


class PhaseProfile(msgspec.Struct, kw_only=True):
    name: str
    duration_ms: int
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class QualityOutcome(msgspec.Struct, kw_only=True):
    test_name: str
    kind: str
    severity: str
    status: Literal["pass", "fail", "error"]
    row_count: int = 0
    message: str = ""
    compiled_sql: str = ""
    duration_ms: int = 0
    description: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    remediation: str = ""
    sample_rows: list[dict[str, Any]] = msgspec.field(default_factory=list)
    test_file: str | None = None


class RunSpec(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str
    attempt: int
    namespace: str
    layer: str
    name: str
    pipeline_type: str
    version_number: int | None
    files: dict[str, str]
    run_started_at: str
    storage: StorageSpec
    warehouse: str
    limits: EngineLimits
    # Locations the job's DuckDB may read (its owner's readable tables and landing); empty = the
    # whole warehouse and the namespace's landing (tests, single user).
    readable: tuple[str, ...] = ()


class StageRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Ask the host to create or evolve the table and open the run's branch."""

    ident: str
    run_id: str
    arrow_schema: bytes
    partition_by: list[dict[str, str]]
    replace_schema: bool
    table_properties: dict[str, str]


class StageState(msgspec.Struct, frozen=True, kw_only=True):
    ident: str
    metadata_location: str
    branch: str
    base_snapshot_id: int | None
    snapshot_id: int | None
    created: bool = False


class CommitRequest(msgspec.Struct, frozen=True, kw_only=True):
    ident: str
    branch: str
    removed_files: list[str]
    added_files: list[str]
    properties: dict[str, str]


class RunResult(msgspec.Struct, kw_only=True):
    ok: bool
    error: str | None = None
    rows_written: int = 0
    stage: StageState | None = None
    committed: bool = False
    phases: list[PhaseProfile] = msgspec.field(default_factory=list)
    quality: list[QualityOutcome] = msgspec.field(default_factory=list)
    landing_files: list[str] = msgspec.field(default_factory=list)
    warnings: list[str] = msgspec.field(default_factory=list)
