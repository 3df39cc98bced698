"""After a successful run: archive the landing files it read. For the reaper: purge old archives.

Archiving moves exactly the files the run captured when `landing_zone()` was rendered (the
`landing_files` of its `run_completed` event) to `{zone}/_processed/{run_id}/`; files that arrived
later stay for the next run, and `_samples/` is never touched.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta

from rat.core.events import Event
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.engine.config import build_config
from rat.landing.service import PROCESSED
from rat.pipelines.service import PipelinesService
from rat.storage.base import Storage

log = logging.getLogger(__name__)
Q = load_queries("rat.landing")


def archive_key(key: str, run_id: str) -> str | None:
    """`{ns}/landing/{zone}/{name}` → `{ns}/landing/{zone}/_processed/{run_id}/{name}`."""
    parts = key.split("/")
    if len(parts) != 4 or parts[1] != "landing":
        return None
    return f"{parts[0]}/landing/{parts[2]}/{PROCESSED}{run_id}/{parts[3]}"


class Archiver:
    def __init__(self, db: Database, storage: Storage, pipelines: PipelinesService) -> None:
        self.db = db
        self.storage = storage
        self.pipelines = pipelines
        self._tasks: set[asyncio.Task[int]] = set()

    def on_run_completed(self, event: Event) -> None:
        """Event subscriber; the moves run in a task (event subscribers must return quickly)."""
        data = event.data
        if data.get("status") != "success" or not data.get("landing_files"):
            return
        task = asyncio.create_task(self.archive(
            uuid.UUID(data["pipeline_id"]), data.get("version_number"), data["run_id"],
            list(data["landing_files"])), name=f"rat-archive-{data['run_id']}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self) -> None:
        """Wait for archiving in flight (shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks))

    async def archive(self, pipeline_id: uuid.UUID, version_number: int | None, run_id: str,
                      uris: list[str]) -> int:
        """Move the run's captured files when its config says `archive_landing_zones`."""
        try:
            if not await self._archives(pipeline_id, version_number):
                return 0
            moved = 0
            for uri in dict.fromkeys(uris):
                moved += await self._move(uri, run_id)
        except Exception:
            log.exception("archiving the landing files of run %s failed", run_id)
            return 0
        return moved

    async def _archives(self, pipeline_id: uuid.UUID, version_number: int | None) -> bool:
        if version_number is not None:
            config = await self.db.val(Q["run_archive_config"], pipeline_id, version_number)
            return bool((config or {}).get("archive_landing_zones"))
        pipeline = await self.pipelines.get_by_id(pipeline_id)
        files = await self.pipelines.draft_files(pipeline)
        entry = "pipeline.py" if "pipeline.py" in files else "pipeline.sql"
        result = build_config(files.get(entry, ""), files.get("config.yaml"),
                              python=entry == "pipeline.py")
        return result.config.archive_landing_zones

    async def _move(self, uri: str, run_id: str) -> int:
        key = self.storage.key_of(uri)
        target = archive_key(key, run_id) if key else None
        if key is None or target is None:
            return 0
        try:
            await self.storage.move(key, target)
        except FileNotFoundError:
            return 0  # deleted meanwhile: nothing to archive
        await self.db.exec(Q["mark_processed"], key, uuid.UUID(run_id), target)
        return 1

    async def purge_processed(self, now: datetime) -> int:
        """Zones with `auto_purge`: delete archived files older than `processed_max_age_days`."""
        purged = 0
        for zone in await self.db.many(Q["purgeable_zones"]):
            cutoff = now - timedelta(days=int(zone["processed_max_age_days"]))
            archived = {r["s3_path"]: r["processed_at"]
                        for r in await self.db.many(Q["processed_files"], zone["id"])}
            base = f"{zone['namespace']}/landing/{zone['name']}/{PROCESSED}"
            doomed = [o.key for o in await self.storage.list(base)
                      if (archived.get(o.key) or o.modified) < cutoff]
            for key in doomed:
                await self.storage.delete(key)
            await self.db.execrows(Q["forget_files"], doomed)
            purged += len(doomed)
        return purged
