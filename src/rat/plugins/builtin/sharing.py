"""rat-sharing: ownership and grants, the `authorizer` slot (product §15).

Resources are namespaces, pipelines (their tables and runs inherit) and landing zones.
Permissions read ⊂ write ⊂ admin. The owner (creator) holds admin; a namespace's owner and its
grants apply to everything in it. Grantees are user ids, or `role:<name>` for everyone with a role.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec

from rat.core.errors import Invalid, NotFound
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.plugins.protocols import PERMISSIONS, Permission, Principal, ReadScope, Resource

Q = load_queries("rat.plugins.builtin", "sharing.sql")
LEVELS: dict[str, int] = {"read": 1, "write": 2, "admin": 3}


class Share(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    resource_type: str
    resource_id: str
    grantee_id: str
    granted_to: str
    permission: str
    granted_by: str | None
    created_at: datetime


class SharePage(msgspec.Struct, kw_only=True):
    shares: list[Share]
    total: int


class ShareCreate(msgspec.Struct, kw_only=True):
    resource_type: str
    resource_id: str
    permission: str
    grantee_id: str | None = None
    granted_to: str | None = None


class Transfer(msgspec.Struct, kw_only=True):
    resource_type: str
    resource_id: str
    to_user_id: str | None = None
    new_owner: str | None = None


class TransferResult(msgspec.Struct, kw_only=True):
    resource_type: str
    resource_id: str
    owner: str


def grantees(principal: Principal) -> list[str]:
    return [principal.user_id, *(f"role:{r}" for r in principal.roles)]


def _share(row: dict[str, Any]) -> Share:
    return Share(granted_to=row["grantee_id"], **row)


class Sharing:
    """The authorizer plus grant management."""

    def __init__(self) -> None:
        self.db: Database | None = None

    async def start(self, runtime: Any) -> None:
        self.db = runtime.db

    def _db(self) -> Database:
        assert self.db is not None  # noqa: S101
        return self.db

    async def level(self, principal: Principal, resource: Resource) -> int:
        if principal.is_admin or (resource.owner and resource.owner == principal.user_id):
            return LEVELS["admin"]
        return int(await self._db().val(Q["level"], grantees(principal), resource.type,
                                        resource.id, resource.namespace, principal.user_id))

    async def check(self, principal: Principal, action: Permission, resource: Resource) -> bool:
        return await self.level(principal, resource) >= LEVELS[action]

    async def filter(self, principal: Principal, action: Permission,
                     resources: Sequence[Resource]) -> list[Resource]:
        return [r for r in resources if await self.check(principal, action, r)]

    async def read_scope(self, principal: Principal) -> ReadScope | None:
        if principal.is_admin:
            return None
        args = (grantees(principal), principal.user_id)
        db = self._db()
        pipelines = await db.many(Q["readable_pipelines"], *args)
        zones = await db.many(Q["readable_zones"], *args)
        return ReadScope(
            namespaces=tuple(r["id"] for r in await db.many(Q["readable_namespaces"], *args)),
            pipeline_ids=tuple(r["id"] for r in pipelines),
            pipeline_keys=tuple(r["key"] for r in pipelines),
            zone_ids=tuple(r["id"] for r in zones), zone_keys=tuple(r["key"] for r in zones))

    async def grant(self, resource: Resource, body: ShareCreate, granted_by: str) -> Share:
        grantee = body.grantee_id or body.granted_to
        if not grantee or len(grantee) > 256:
            raise Invalid("grantee_id is required (a user id or role:<name>)")
        if body.permission not in PERMISSIONS:
            raise Invalid("permission must be read, write or admin")
        row = await self._db().one(Q["upsert_grant"], uuid.uuid4(), resource.type, resource.id,
                                   grantee, body.permission, granted_by)
        assert row is not None  # noqa: S101
        return _share(row)

    async def shares(self, resource: Resource) -> SharePage:
        rows = await self._db().many(Q["list_grants"], resource.type, resource.id)
        return SharePage(shares=[_share(r) for r in rows], total=len(rows))

    async def revoke(self, grant_id: uuid.UUID) -> None:
        if not await self._db().execrows(Q["delete_grant"], grant_id):
            raise NotFound("grant not found")

    async def transfer(self, resource: Resource, new_owner: str) -> TransferResult:
        if not new_owner or len(new_owner) > 256:
            raise Invalid("to_user_id is required")
        query = {"pipeline": "set_pipeline_owner", "landing_zone": "set_zone_owner",
                 "namespace": "set_namespace_owner"}[resource.type]
        await self._db().exec(Q[query], resource.id, new_owner)
        return TransferResult(resource_type=resource.type, resource_id=resource.id,
                              owner=new_owner)


class SharingPlugin:
    name = "rat-sharing"
    version = "1"
    slots = ("authorizer",)
    config_type = None
    requires = ("rat-auth",)

    def activate(self, ctx: Any) -> None:
        sharing = Sharing()
        ctx.provide("authorizer", sharing)
        ctx.add_capability("sharing")
        ctx.on_start(sharing.start)


plugin = SharingPlugin
