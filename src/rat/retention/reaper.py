"""The reaper: one pass applies every retention setting; each task is isolated and counted.

A pass runs on the leader every `reaper_interval_minutes` (and on demand from the admin API).
The `running` flag in `reaper_status` makes passes exclusive across processes; task counts are
added to the cumulative counters as each task ends. Iceberg work runs in threads.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from rat.core.errors import FailedPrecondition
from rat.core.events import EventBus
from rat.core.timefmt import utcnow
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.engine import maintenance
from rat.engine.catalog import IcebergTables
from rat.landing.archive import Archiver
from rat.retention.models import ReaperStatus, RetentionConfig, effective
from rat.retention.service import RetentionSettings
from rat.storage.base import Storage

log = logging.getLogger(__name__)
Q = load_queries("rat.retention")
BLOB_PREFIX = "_rat/blobs/sha256/"
BLOB_MIN_AGE = timedelta(days=1)
Task = Callable[[RetentionConfig, datetime], Awaitable[int]]
# Yields whether storage files may be deleted now; a backup copying storage says no (ops fence).
DeletionWindow = Callable[[], AbstractAsyncContextManager[bool]]
DELETES_FILES = ("pipelines_purged", "orphan_files_removed", "lz_files_cleaned", "blobs_deleted")


@asynccontextmanager
async def always_open() -> AsyncIterator[bool]:
    yield True


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


class Reaper:
    def __init__(self, *, db: Database, storage: Storage, tables: IcebergTables,
                 retention: RetentionSettings, archiver: Archiver, events: EventBus,
                 deletion_window: DeletionWindow = always_open) -> None:
        self.db = db
        self.deletion_window = deletion_window
        self.storage = storage
        self.tables = tables
        self.retention = retention
        self.archiver = archiver
        self.events = events
        self._task: asyncio.Task[Any] | None = None
        self.tasks: dict[str, Task] = {
            "runs_failed": self._fail_stuck, "runs_pruned": self._prune_runs,
            "logs_pruned": self._prune_logs, "quality_pruned": self._prune_quality,
            "pipelines_purged": self._purge_pipelines, "branches_cleaned": self._clean_branches,
            "snapshots_expired": self._expire_snapshots,
            "orphan_files_removed": self._remove_orphans,
            "lz_files_cleaned": self._purge_landing, "blobs_deleted": self._delete_blobs,
            "audit_pruned": self._prune_audit,
        }

    def interval(self) -> float:
        return self.retention.cached.reaper_interval_minutes * 60.0

    async def duty(self) -> None:
        """Leader duty: start a pass in the background (the leader's other duties keep ticking)."""
        await self.retention.config()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._background(), name="rat-reaper")

    async def _background(self) -> None:
        try:
            await self.run_pass()
        except FailedPrecondition:
            log.info("reaper pass skipped: another pass is running")
        except Exception as exc:  # a background task must not die unheard (e.g. database blip)
            log.warning("reaper pass stopped: %s: %s", type(exc).__name__, exc)

    async def stop(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def run_pass(self) -> ReaperStatus:
        """One full pass; FailedPrecondition (409) when a pass is already running."""
        if await self.db.one(Q["begin_pass"]) is None:
            raise FailedPrecondition("a reaper pass is already running")
        try:
            config = await self.retention.config()
            for name, task in self.tasks.items():
                await self._run_task(name, task, config)
        finally:
            await asyncio.shield(self.db.exec(Q["end_pass"]))
        return await self.retention.status()

    async def _run_task(self, name: str, task: Task, config: RetentionConfig) -> None:
        try:
            if name in DELETES_FILES:
                async with self.deletion_window() as allowed:
                    count = await task(config, utcnow()) if allowed else 0
            else:
                count = await task(config, utcnow())
        except Exception:
            log.exception("reaper task %s failed", name)
            return
        await self.db.exec(Q["add_counts"], {name: count})
        if count:
            log.info("reaper %s: %d", name, count)

    # Postgres --------------------------------------------------------------------------------

    async def _fail_stuck(self, cfg: RetentionConfig, _now: datetime) -> int:
        return await self.db.execrows(Q["fail_stuck_runs"], cfg.stuck_run_timeout_minutes) + \
            await self.db.execrows(Q["fail_unstarted_runs"])

    async def _prune_runs(self, cfg: RetentionConfig, _now: datetime) -> int:
        return await self.db.execrows(Q["prune_runs"], cfg.runs_max_per_pipeline,
                                      cfg.runs_max_age_days)

    async def _prune_logs(self, cfg: RetentionConfig, _now: datetime) -> int:
        return await self.db.execrows(Q["prune_logs"], cfg.logs_max_age_days)

    async def _prune_quality(self, cfg: RetentionConfig, _now: datetime) -> int:
        return await self.db.execrows(Q["prune_quality"], cfg.quality_results_max_per_test)

    async def _prune_audit(self, cfg: RetentionConfig, _now: datetime) -> int:
        return await self.db.execrows(Q["prune_audit"], cfg.audit_log_max_age_days)

    async def _purge_landing(self, _cfg: RetentionConfig, now: datetime) -> int:
        return await self.archiver.purge_processed(now)

    async def _purge_pipelines(self, cfg: RetentionConfig, _now: datetime) -> int:
        """Soft-deleted pipelines past `soft_delete_purge_days`: files, rows, optionally table."""
        purged = 0
        for row in await self.db.many(Q["purgeable_pipelines"], cfg.soft_delete_purge_days):
            if row["drop_table_on_purge"]:
                await self._drop_table(row)
            await self.storage.delete_prefix(f"_rat/trash/{row['id']}/")
            purged += await self.db.execrows(Q["purge_pipeline"], row["id"])
        return purged

    async def _drop_table(self, row: dict[str, Any]) -> None:
        """Drop the pipeline's table, unless a new pipeline of the same name owns it now."""
        ident = f"{row['namespace']}.{row['layer']}.{row['name']}"
        summary = await asyncio.to_thread(self.tables.summary, ident)
        if summary is None or summary.pipeline_id not in (None, str(row["id"])):
            return
        await asyncio.to_thread(self.tables.drop, ident)
        await self.events.emit("table_changed", namespace=row["namespace"], layer=row["layer"],
                               name=row["name"])

    async def _delete_blobs(self, _cfg: RetentionConfig, now: datetime) -> int:
        """Content-addressed blobs no version references, once they are a day old.

        Publish writes blobs before the version row commits: a young unreferenced blob may be
        about to be used.
        """
        referenced = {r["cid"].removeprefix("sha256:")
                      for r in await self.db.many(Q["referenced_blobs"])}
        deleted = 0
        for obj in await self.storage.list(BLOB_PREFIX):
            digest = obj.key.rsplit("/", 1)[-1]
            if digest not in referenced and obj.modified < now - BLOB_MIN_AGE:
                deleted += int(await self.storage.delete(obj.key))
        return deleted

    # Iceberg -----------------------------------------------------------------------------------

    async def _tables(self, cfg: RetentionConfig) -> list[tuple[maintenance.TableInfo,
                                                                RetentionConfig]]:
        """Every table with the retention that applies to it (its pipeline's overrides)."""
        overrides = {str(r["id"]): r["retention_config"]
                     for r in await self.db.many(Q["pipeline_overrides"])}
        infos = await asyncio.to_thread(maintenance.list_tables, self.tables)
        return [(t, effective(cfg, overrides.get(t.pipeline_id or ""))) for t in infos]

    async def _clean_branches(self, cfg: RetentionConfig, now: datetime) -> int:
        """Staging branches of finished or vanished runs, older than the branch age limit."""
        cutoff = now - timedelta(hours=cfg.nessie_orphan_branch_max_age_hours)
        removed = 0
        for info, _ in await self._tables(cfg):
            branches = await asyncio.to_thread(maintenance.run_branches, self.tables, info.ident)
            doomed = await self._stale_branches(branches, cutoff)
            if doomed:
                removed += await asyncio.to_thread(maintenance.remove_branches, self.tables,
                                                   info.ident, doomed)
        return removed

    async def _stale_branches(self, branches: list[maintenance.BranchInfo],
                              cutoff: datetime) -> list[str]:
        ids = {}
        for branch in branches:
            try:
                ids[branch.name] = uuid.UUID(branch.name.removeprefix(maintenance.RUN_BRANCH_PREFIX))
            except ValueError:
                continue
        runs = {r["id"]: r for r in await self.db.many(Q["runs_by_ids"], list(ids.values()))}
        doomed = []
        for branch in branches:
            run = runs.get(ids.get(branch.name))
            if run is not None and run["status"] in ("pending", "running"):
                continue
            ended = run["finished_at"] if run is not None and run["finished_at"] else None
            if (_ms(ended) if ended else branch.head_timestamp_ms) < _ms(cutoff):
                doomed.append(branch.name)
        return doomed

    async def _expire_snapshots(self, cfg: RetentionConfig, now: datetime) -> int:
        expired = 0
        for info, eff in await self._tables(cfg):
            cutoff = _ms(now - timedelta(days=eff.iceberg_snapshot_max_age_days))
            expired += await asyncio.to_thread(maintenance.expire_snapshots, self.tables,
                                               info.ident, cutoff)
        return expired

    async def _remove_orphans(self, cfg: RetentionConfig, now: datetime) -> int:
        removed = 0
        for info, eff in await self._tables(cfg):
            cutoff = now - timedelta(days=eff.iceberg_orphan_file_max_age_days)
            removed += await self.remove_orphans(info, cutoff)
        return removed

    async def remove_orphans(self, info: maintenance.TableInfo, cutoff: datetime) -> int:
        """Delete files under the table's location that nothing references, older than `cutoff`.

        Only when the referenced-file listing completed; tables outside this store (a custom
        warehouse) are left alone.
        """
        prefix = self.storage.key_of(maintenance.normalize(info.location).rstrip("/"))
        if prefix is None:
            return 0
        referenced = await asyncio.to_thread(maintenance.referenced_files, self.tables,
                                             info.ident)
        if referenced is None:
            return 0
        removed = 0
        for obj in await self.storage.list(prefix + "/"):
            if obj.modified < cutoff and \
                    maintenance.normalize(self.storage.uri(obj.key)) not in referenced:
                removed += int(await self.storage.delete(obj.key))
        return removed
