"""The lineage graph: nodes for pipelines, tables and landing zones, edges from pipeline code.

What each pipeline reads is parsed from its published files (the draft if never published) and
cached until a pipeline, its files or a namespace change. Run status, quality counts, table
stats and zone file counts are looked up per request, so they are never stale.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from rat.core.events import Event, EventBus
from rat.core.ids import slug
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.lineage.graph import Dependencies, dependencies, find_cycle, qualify
from rat.lineage.models import (
    LandingInfo,
    LatestRun,
    LineageEdge,
    LineageGraph,
    LineageNode,
    QualitySummary,
    TableStats,
)
from rat.pipelines.models import pipeline_prefix
from rat.pipelines.service import blob_key
from rat.plugins.protocols import ReadScope
from rat.storage.base import Storage
from rat.tables.service import TableRegistry

Q = load_queries("rat.lineage")
CODE_FILES = ("pipeline.sql", "pipeline.py", "config.yaml")
# Events that cannot change what any pipeline's code reads; everything else drops the cache.
_IRRELEVANT = ("run_", "schedule_", "trigger_", "quality_", "freshness_", "table_changed",
               "landing_file_added")
READ_CONCURRENCY = 8


@dataclass(frozen=True)
class _Pipeline:
    id: uuid.UUID
    namespace: str
    layer: str
    name: str
    deps: Dependencies

    @property
    def ident(self) -> str:
        return f"{self.namespace}.{self.layer}.{self.name}"


class LineageService:
    def __init__(self, db: Database, storage: Storage, registry: TableRegistry,
                 events: EventBus) -> None:
        self.db = db
        self.storage = storage
        self.registry = registry
        self._cache: list[_Pipeline] | None = None
        self._generation = 0
        self._lock = asyncio.Lock()
        events.subscribe(self._on_event)

    def _on_event(self, event: Event) -> None:
        if not event.type.startswith(_IRRELEVANT):
            self._generation += 1
            self._cache = None

    async def _pipelines(self) -> list[_Pipeline]:
        async with self._lock:
            if self._cache is None:
                generation = self._generation
                rows = await self.db.many(Q["lineage_pipelines"])
                gate = asyncio.Semaphore(READ_CONCURRENCY)
                found = await asyncio.gather(*(self._parse(row, gate) for row in rows))
                if generation != self._generation:
                    return list(found)  # changed while reading: use once, do not cache
                self._cache = list(found)
            return self._cache

    async def _parse(self, row: dict[str, Any], gate: asyncio.Semaphore) -> _Pipeline:
        async with gate:
            files = await self._code(row)
        return _Pipeline(id=row["id"], namespace=row["namespace"], layer=row["layer"],
                         name=row["name"], deps=dependencies(files))

    async def _code(self, row: dict[str, Any]) -> dict[str, str]:
        published: dict[str, str] = row["published_versions"] or {}
        prefix = pipeline_prefix(row["namespace"], row["layer"], row["name"])
        out: dict[str, str] = {}
        for rel in CODE_FILES:
            if row["current_version"] is not None:
                data = await self.storage.read_optional(blob_key(published[rel])) \
                    if rel in published else None
            else:
                data = await self.storage.read_optional(prefix + rel)
            if data is not None:
                out[rel] = data.decode("utf-8", errors="replace")
        return out

    async def graph(self, namespace: str | None = None,
                    scope: ReadScope | None = None) -> LineageGraph:
        if namespace is not None:
            slug(namespace, "namespace")
        builder = _Builder()
        runs = {r["pipeline_id"]: r for r in await self.db.many(Q["latest_runs"])}
        for p in await self._pipelines():
            builder.pipeline(p, runs.get(p.id))
        tables = await self.registry.all()
        for t in tables.values():
            builder.table(f"{t.namespace}.{t.layer}.{t.name}")
        for z in await self.db.many(Q["lineage_zones"]):
            builder.zone(z["namespace"], z["name"]).landing_info = \
                LandingInfo(file_count=int(z["file_count"]))
        for ident, node in builder.nodes.items():
            summary = tables.get(ident.removeprefix("table:"))
            if node.type == "table" and summary is not None:
                node.table_stats = TableStats(row_count=summary.row_count,
                                              size_bytes=summary.size_bytes)
        return builder.result(namespace, scope)

    async def publish_errors(self, namespace: str, layer: str, name: str,
                             files: dict[str, str]) -> list[str]:
        """Errors that must stop publishing these files (relative path -> text).

        That is a cycle of `ref()`s through this pipeline; a self-reference acts as `this`.
        """
        ident = f"{namespace}.{layer}.{name}"
        reads = {p.ident: (p.namespace, p.deps.refs) for p in await self._pipelines()}
        reads[ident] = (namespace, dependencies(files).refs)
        edges = [(source, target) for source, (ns, refs) in reads.items() for ref in refs
                 if (target := qualify(ref, ns)) in reads]
        cycle = find_cycle(edges, through=ident)
        if cycle is None:
            return []
        return ["ref() cycle: " + " -> ".join(cycle) + " (each pipeline reads the next one's "
                "table)"]


class _Builder:
    """Collects nodes and edges (deduplicated) and filters them to a namespace."""

    def __init__(self) -> None:
        self.nodes: dict[str, LineageNode] = {}
        self.edges: set[LineageEdge] = set()

    def _node(self, node_id: str, node_type: str, namespace: str, name: str,
              layer: str | None = None) -> LineageNode:
        if node_id not in self.nodes:
            self.nodes[node_id] = LineageNode(id=node_id, type=node_type, namespace=namespace,
                                              name=name, layer=layer)
        return self.nodes[node_id]

    def table(self, ident: str) -> LineageNode:
        ns, layer, name = ident.split(".")
        return self._node(f"table:{ident}", "table", ns, name, layer)

    def zone(self, namespace: str, name: str) -> LineageNode:
        return self._node(f"landing:{namespace}.{name}", "landing_zone", namespace, name)

    def pipeline(self, p: _Pipeline, run: dict[str, Any] | None) -> None:
        node = self._node(f"pipeline:{p.ident}", "pipeline", p.namespace, p.name, p.layer)
        if run is not None:
            node.latest_run = LatestRun(id=run["id"], status=run["status"],
                                        started_at=run["started_at"],
                                        duration_ms=run["duration_ms"])
            node.quality = QualitySummary(total=run["total"], passed=run["passed"],
                                          failed=run["failed"], warned=run["warned"])
        self._edge(node.id, self.table(p.ident).id, "produces")
        for ref in (*p.deps.refs, *p.deps.checks):
            ident = qualify(ref, p.namespace)
            if ident is not None:
                self._edge(self.table(ident).id, node.id, "ref")
        for zone in p.deps.zones:
            self._edge(self.zone(p.namespace, zone).id, node.id, "landing_input")

    def _edge(self, source: str, target: str, kind: str) -> None:
        self.edges.add(LineageEdge(source=source, target=target, type=kind))

    def result(self, namespace: str | None, scope: ReadScope | None) -> LineageGraph:
        """Nodes of `namespace` and their direct neighbours, less what `scope` hides."""
        visible = {i for i, n in self.nodes.items() if _readable(n, scope)}
        keep = {i for i in visible if namespace is None or self.nodes[i].namespace == namespace}
        edges = sorted((e for e in self.edges if e.source in visible and e.target in visible
                        and (e.source in keep or e.target in keep)),
                       key=lambda e: (e.source, e.target, e.type))
        keep |= {e.source for e in edges} | {e.target for e in edges}
        return LineageGraph(nodes=[self.nodes[i] for i in sorted(keep)], edges=edges)


def _readable(node: LineageNode, scope: ReadScope | None) -> bool:
    if scope is None or node.namespace in scope.namespaces:
        return True
    if node.type == "landing_zone":
        return f"{node.namespace}.{node.name}" in scope.zone_keys
    return f"{node.namespace}.{node.layer}.{node.name}" in scope.pipeline_keys
