"""Turn request coordinates (path parameters, body fields, storage paths) into shareable resources.

Only used when an authorizer is active. A coordinate that names nothing returns None: the handler
then answers 404 itself, so a missing and an unreadable resource look the same.
"""

from __future__ import annotations

import uuid
from typing import Any

from rat.core.ids import LAYERS, SLUG
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.plugins.protocols import Resource, ResourceType

Q = load_queries("rat.plugins")


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


def _slug(value: Any) -> str | None:
    return value if isinstance(value, str) and SLUG.match(value) and len(value) <= 128 else None


class ResourceLookup:
    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def _make(kind: ResourceType, row: dict[str, Any] | None) -> Resource | None:
        if row is None:
            return None
        return Resource(type=kind, id=row["id"], namespace=row["namespace"], owner=row["owner"])

    async def namespace(self, name: Any) -> Resource | None:
        if _slug(name) is None:
            return None
        return self._make("namespace", await self.db.one(Q["namespace_resource"], name))

    async def pipeline(self, ns: Any, layer: Any, name: Any) -> Resource | None:
        if _slug(ns) is None or layer not in LAYERS or _slug(name) is None:
            return None
        return self._make("pipeline", await self.db.one(Q["pipeline_resource"], ns, layer, name))

    async def table(self, ns: Any, layer: Any, name: Any) -> Resource | None:
        """A table is checked as its pipeline; an orphan table as its namespace."""
        return await self.pipeline(ns, layer, name) or await self.namespace(ns)

    async def run(self, run_id: Any) -> Resource | None:
        rid = _uuid(run_id)
        return None if rid is None else self._make(
            "pipeline", await self.db.one(Q["run_resource"], rid))

    async def schedule(self, schedule_id: Any) -> Resource | None:
        sid = _uuid(schedule_id)
        return None if sid is None else self._make(
            "pipeline", await self.db.one(Q["schedule_resource"], sid))

    async def zone(self, ns: Any, name: Any) -> Resource | None:
        if _slug(ns) is None or _slug(name) is None:
            return None
        return self._make("landing_zone", await self.db.one(Q["zone_resource"], ns, name))

    async def by_key(self, resource_type: Any, resource_id: Any) -> Resource | None:
        """`resource_id` as a natural key ("ns", "ns.layer.name", "ns.zone") or a UUID."""
        rid = str(resource_id or "")
        if resource_type == "namespace":
            return await self.namespace(rid)
        uid = _uuid(rid)
        if resource_type == "pipeline":
            if uid is not None:
                return self._make("pipeline",
                                  await self.db.one(Q["pipeline_resource_by_id"], uid))
            return await self.pipeline(*[*rid.split("."), "", "", ""][:3])
        if resource_type == "landing_zone":
            if uid is not None:
                return self._make("landing_zone",
                                  await self.db.one(Q["zone_resource_by_id"], uid))
            return await self.zone(*[*rid.split("."), "", ""][:2])
        return None

    async def grant(self, grant_id: Any) -> Resource | None:
        gid = _uuid(grant_id)
        row = None if gid is None else await self.db.one(Q["grant_resource"], gid)
        return None if row is None else await self.by_key(row["resource_type"], row["resource_id"])

    async def path(self, path: Any) -> Resource | None:
        """A storage path: pipeline folder -> pipeline, zone folder -> zone, else the namespace."""
        parts = str(path or "").strip("/").split("/")
        if len(parts) >= 4 and parts[1] == "pipelines":
            found = await self.pipeline(parts[0], parts[2], parts[3])
            if found is not None:
                return found
        if len(parts) >= 3 and parts[1] == "landing":
            found = await self.zone(parts[0], parts[2])
            if found is not None:
                return found
        return await self.namespace(parts[0])
