"""Trigger CRUD: per-type config validation (create and update), webhook tokens, cycle checks."""

from __future__ import annotations

import builtins
import hashlib
import secrets
import uuid
from collections import defaultdict
from typing import Any

from rat.core.errors import Invalid, NotFound
from rat.core.ids import LAYERS, parse_uuid, slug
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.landing.service import LandingService
from rat.pipelines.models import Pipeline
from rat.pipelines.service import PipelinesService, check_page
from rat.plugins.protocols import ReadScope
from rat.schedules.cron import check_cron, check_timezone
from rat.schedules.models import (
    TRIGGER_TYPES,
    Trigger,
    TriggerCreate,
    TriggerPage,
    TriggerRow,
    TriggerUpdate,
    ZoneWatcher,
)

Q = load_queries("rat.schedules")
MAX_COOLDOWN = 86_400
MAX_PATTERN = 200
MAX_DEPENDENCIES = 50
WEBHOOK_PATH = "/api/v1/webhooks"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _text(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    if value is None or value == "":
        raise Invalid(f"config.{key}: required")
    if not isinstance(value, str):
        raise Invalid(f"config.{key}: must be a string")
    return value


def _slug(config: dict[str, Any], key: str) -> str:
    return slug(_text(config, key), f"config.{key}")


def _cron(config: dict[str, Any]) -> dict[str, Any]:
    out = {"cron_expr": check_cron(config.get("cron_expr"), "config.cron_expr")}
    if config.get("timezone") is not None:
        out["timezone"] = check_timezone(config["timezone"], "config.timezone")
    return out


def _check_cooldown(value: int) -> int:
    if not 0 <= value <= MAX_COOLDOWN:
        raise Invalid(f"cooldown_seconds must be between 0 and {MAX_COOLDOWN}")
    return value


def upstreams(type_: str, config: dict[str, Any]) -> list[str]:
    """The pipelines ("ns.layer.name") whose success a trigger waits for."""
    if type_ == "pipeline_success":
        return [f"{config['namespace']}.{config['layer']}.{config['pipeline']}"]
    if type_ == "cron_dependency":
        return list(config.get("dependencies", []))
    return []


class TriggersService:
    def __init__(self, db: Database, pipelines: PipelinesService, landing: LandingService) -> None:
        self.db = db
        self.pipelines = pipelines
        self.landing = landing

    async def list(self, namespace: str, layer: str, name: str, *, base_url: str,
                   limit: int = 50, offset: int = 0) -> TriggerPage:
        check_page(limit, offset)
        pipeline = await self.pipelines.get(namespace, layer, name)
        rows = await self.db.many(Q["list_triggers"], pipeline.id, limit, offset)
        total = int(rows[0]["total"]) if rows else int(
            await self.db.val(Q["count_triggers"], pipeline.id))
        triggers = [self._public(_row(r), base_url) for r in rows]
        return TriggerPage(triggers=triggers, total=total)

    async def watching(self, namespace: str, zone: str, *, limit: int = 200,
                       scope: ReadScope | None = None) -> builtins.list[ZoneWatcher]:
        """Upload and file-pattern triggers (enabled or not) of live pipelines watching a zone.

        `scope` (from the authorizer) hides the ones of unreadable pipelines.
        """
        rows = await self.db.many(Q["zone_watchers"], namespace, zone,
                                  *ReadScope.pipeline_args(scope), limit)
        return [ZoneWatcher(**r) for r in rows]

    async def get(self, namespace: str, layer: str, name: str, trigger_id: str, *,
                  base_url: str) -> Trigger:
        return self._public(await self._owned(namespace, layer, name, trigger_id), base_url)

    async def _owned(self, namespace: str, layer: str, name: str, trigger_id: str) -> TriggerRow:
        tid = parse_uuid(trigger_id, "triggerID")
        pipeline = await self.pipelines.get(namespace, layer, name)
        row = await self.db.one(Q["get_trigger"], tid)
        if row is None or row["pipeline_id"] != pipeline.id:
            raise NotFound("trigger not found")
        return _row(row)

    @staticmethod
    def _public(row: TriggerRow, base_url: str, token: str | None = None) -> Trigger:
        if row.type != "webhook":
            return row.public()
        url = base_url.rstrip("/") + WEBHOOK_PATH
        return row.public(webhook_url=url, **({"webhook_token": token} if token else {}))

    async def create(self, namespace: str, layer: str, name: str, body: TriggerCreate, *,
                     base_url: str) -> Trigger:
        pipeline = await self.pipelines.get(namespace, layer, name)
        config = await self.validate(pipeline, body.type, body.config)
        cooldown = _check_cooldown(body.cooldown_seconds)
        token = secrets.token_hex(32) if body.type == "webhook" else None
        trigger_id = uuid.uuid4()
        await self.db.exec(Q["insert_trigger"], trigger_id, pipeline.id, body.type, config,
                           token_hash(token) if token else None, body.enabled, cooldown)
        row = _row(await self.db.one(Q["get_trigger"], trigger_id) or {})
        return self._public(row, base_url, token)

    async def update(self, namespace: str, layer: str, name: str, trigger_id: str,
                     body: TriggerUpdate, *, base_url: str) -> Trigger:
        """Type is immutable; a new config is validated exactly as on create."""
        row = await self._owned(namespace, layer, name, trigger_id)
        pipeline = await self.pipelines.get(namespace, layer, name)
        config = row.config if body.config is None else \
            await self.validate(pipeline, row.type, body.config, exclude=row.id)
        cooldown = row.cooldown_seconds if body.cooldown_seconds is None else \
            _check_cooldown(body.cooldown_seconds)
        enabled = row.enabled if body.enabled is None else body.enabled
        await self.db.exec(Q["update_trigger"], row.id, config, enabled, cooldown)
        return await self.get(namespace, layer, name, trigger_id, base_url=base_url)

    async def delete(self, namespace: str, layer: str, name: str, trigger_id: str) -> None:
        row = await self._owned(namespace, layer, name, trigger_id)
        await self.db.execrows(Q["delete_trigger"], row.id, row.pipeline_id)

    async def rotate_token(self, namespace: str, layer: str, name: str, trigger_id: str, *,
                           base_url: str) -> Trigger:
        row = await self._owned(namespace, layer, name, trigger_id)
        if row.type != "webhook":
            raise Invalid("only webhook triggers have a token")
        token = secrets.token_hex(32)
        await self.db.exec(Q["set_token_hash"], row.id, token_hash(token))
        fresh = await self._owned(namespace, layer, name, trigger_id)
        return self._public(fresh, base_url, token)

    # validation ----------------------------------------------------------------------------

    async def validate(self, pipeline: Pipeline, type_: str, config: dict[str, Any], *,
                       exclude: uuid.UUID | None = None) -> dict[str, Any]:
        """The normalised config for `type_`, or Invalid (400) naming the offending field."""
        if type_ not in TRIGGER_TYPES:
            raise Invalid(f"type must be one of {', '.join(TRIGGER_TYPES)}")
        if type_ == "webhook":
            return {}
        if type_ == "cron":
            return _cron(config)
        if type_ in ("landing_zone_upload", "file_pattern"):
            return await self._zone_config(type_, config)
        out = await (self._success_config(pipeline, config) if type_ == "pipeline_success"
                     else self._dependency_config(pipeline, config))
        await self._check_cycle(pipeline, upstreams(type_, out), exclude)
        return out

    async def _zone_config(self, type_: str, config: dict[str, Any]) -> dict[str, Any]:
        out = {"namespace": _slug(config, "namespace"), "zone_name": _slug(config, "zone_name")}
        try:
            await self.landing.get(out["namespace"], out["zone_name"])
        except NotFound:
            raise Invalid(f"config.zone_name: landing zone {out['namespace']}/"
                          f"{out['zone_name']} does not exist") from None
        if type_ == "file_pattern":
            pattern = _text(config, "pattern")
            if len(pattern) > MAX_PATTERN:
                raise Invalid(f"config.pattern: must be at most {MAX_PATTERN} characters")
            out["pattern"] = pattern
        return out

    async def _success_config(self, pipeline: Pipeline, config: dict[str, Any]) -> dict[str, Any]:
        out = {"namespace": _slug(config, "namespace"), "layer": _text(config, "layer"),
               "pipeline": _slug(config, "pipeline")}
        if out["layer"] not in LAYERS:
            raise Invalid("config.layer: must be one of bronze, silver, gold")
        await self._check_upstream(pipeline, ".".join(out.values()), "config")
        return out

    async def _dependency_config(self, pipeline: Pipeline,
                                 config: dict[str, Any]) -> dict[str, Any]:
        out = _cron(config)
        deps = config.get("dependencies")
        if not isinstance(deps, list) or not 1 <= len(deps) <= MAX_DEPENDENCIES:
            raise Invalid(f"config.dependencies: a list of 1 to {MAX_DEPENDENCIES} "
                          "'namespace.layer.pipeline' names is required")
        unique = list(dict.fromkeys(deps))
        for dep in unique:
            await self._check_upstream(pipeline, dep, "config.dependencies")
        mode = config.get("mode") or "all"
        if mode not in ("all", "any"):
            raise Invalid("config.mode: must be 'all' or 'any'")
        return {**out, "dependencies": unique, "mode": mode}

    async def _check_upstream(self, pipeline: Pipeline, ident: object, field: str) -> None:
        parts = ident.split(".") if isinstance(ident, str) else []
        if len(parts) != 3 or parts[1] not in LAYERS:
            raise Invalid(f"{field}: {ident!r} is not 'namespace.layer.pipeline'")
        if ident == pipeline.ident:
            raise Invalid(f"{field}: a trigger cannot depend on its own pipeline")
        if not await self.db.val(Q["live_pipeline_id"], *parts):
            raise Invalid(f"{field}: pipeline {ident} does not exist")

    async def _check_cycle(self, pipeline: Pipeline, new_upstreams: builtins.list[str],
                           exclude: uuid.UUID | None) -> None:
        """Refuse an edge upstream → pipeline when pipeline already (transitively) feeds upstream."""
        downstream: dict[str, set[str]] = defaultdict(set)
        for edge in await self.db.many(Q["dependency_edges"]):
            if edge["id"] != exclude:
                for up in upstreams(edge["type"], edge["config"]):
                    downstream[up].add(edge["downstream"])
        seen, frontier = {pipeline.ident}, [pipeline.ident]
        while frontier:
            for nxt in downstream[frontier.pop()] - seen:
                seen.add(nxt)
                frontier.append(nxt)
        looped = [u for u in new_upstreams if u in seen]
        if looped:
            raise Invalid(f"config: {looped[0]} already runs after {pipeline.ident}; "
                          "this trigger would create a cycle")


def _row(row: dict[str, Any]) -> TriggerRow:
    return TriggerRow(**{k: v for k, v in row.items() if k != "total"})
