"""What a pipeline's code may read: its owner's rights, resolved for one run or preview.

A run (and a preview) executes with the rights of its pipeline's owner. `ref()`, `this`,
`landing_zone()` and quality tests resolve tables through `table_state`, which answers "not
found" for a table the owner may not read; the job's DuckDB `allowed_directories` and its
Landlock rules list only the readable tables' locations, so a raw `read_parquet` of another
table's path fails as well.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from rat.core.specs import Confinement, StorageSpec
from rat.engine.catalog import IcebergTables, ident_tuple
from rat.pipelines.models import Pipeline
from rat.plugins.protocols import Authorizer, Principal, ReadScope
from rat.runtime.sandbox import Sandbox, prepare_shared_dir


class JobAccess:
    """Read scope, DuckDB allow-list and sandbox confinement of a pipeline's jobs."""

    def __init__(self, *, authorizer: Authorizer | None, tables: IcebergTables,
                 sandbox: Sandbox, storage: StorageSpec, warehouse: str) -> None:
        self.authorizer = authorizer
        self.tables = tables
        self.sandbox = sandbox
        self.storage = storage
        self.warehouse = warehouse.rstrip("/")

    async def scope(self, pipeline: Pipeline) -> ReadScope | None:
        """The owner's read scope; None = everything (community, or no owner recorded)."""
        if self.authorizer is None or not pipeline.owner:
            return None
        return await self.authorizer.read_scope(Principal(user_id=pipeline.owner))

    @staticmethod
    def can_read(scope: ReadScope | None, pipeline: Pipeline, ident: str) -> bool:
        if scope is None or ident == pipeline.ident:
            return True
        try:
            namespace, layer, name = ident_tuple(ident)
        except ValueError:
            return False
        return scope.allows_table(namespace, layer, name)

    def readable(self, scope: ReadScope | None, pipeline: Pipeline) -> tuple[str, ...]:
        """Locations (paths or URIs) the job's DuckDB may read: tables, landing, nothing else."""
        landing = self.storage.uri(f"{pipeline.namespace}/landing")
        if scope is None:
            return (self.warehouse, landing)
        tables = {self.tables.location(pipeline.ident),
                  *(f"{self.warehouse}/{ns}" for ns in scope.namespaces),
                  *(self.tables.location(key) for key in scope.pipeline_keys)}
        return (*sorted(tables), landing)

    async def jail(self, pipeline: Pipeline, readable: tuple[str, ...],
                   scratch: Path) -> Confinement:
        """The job's confinement; creates its scratch and (local storage) its data directory."""
        write = [str(scratch)]
        own = self.tables.location(pipeline.ident)
        if self.storage.kind == "local":
            write.append(f"{own}/data")
        await asyncio.to_thread(self._prepare, [Path(p) for p in write])
        read = [r for r in readable if self.storage.kind == "local" or not r.startswith("s3:")]
        return self.sandbox.jail(read=read, write=write, scratch=str(scratch))

    def _prepare(self, dirs: list[Path]) -> None:
        for path in dirs:
            prepare_shared_dir(path, self.sandbox)
