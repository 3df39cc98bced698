"""`rat restore DIR [--force]`: verify the backup, load the dump, copy storage back, relocate tables.

The target is whatever the settings point at (data directory, database, bucket). Everything in
the backup is verified against the manifest's checksums before the target is touched. A target
holding RAT data (storage objects, pipelines, runs or landing zones) is refused unless `--force`,
which empties it first. When the storage root differs from the backed-up one (another data
directory or bucket), the Iceberg metadata and catalog rows are rewritten to the new root; see
docs/adr/0004-backup-restore-and-table-relocation.md.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import msgspec

from rat.config import Settings
from rat.core.specs import StorageSpec
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.engine.relocate import Relocator, is_manifest_list, is_metadata_key
from rat.ops.backup import (
    DUMP,
    FORMAT,
    KEY_FILE,
    MANIFEST,
    STORAGE,
    FileEntry,
    Manifest,
    Say,
    root_uri,
    sha256_file,
)
from rat.ops.postgres import OpsError, load, open_database
from rat.storage.base import ObjectStore

Q = load_queries("rat.ops")
CATALOG = load_queries("rat.ops", "catalog.sql")
RAT_TABLES = 3  # pipelines, runs, landing_zones: what `rat_rows` counts


class RestoreReport(msgspec.Struct, frozen=True, kw_only=True):
    files: int
    bytes: int
    relocated_from: str | None
    relocated_files: int
    relocated_rows: int


def read_manifest(source: Path) -> Manifest:
    try:
        manifest = msgspec.json.decode((source / MANIFEST).read_bytes(), type=Manifest)
    except FileNotFoundError:
        raise OpsError(f"{source} has no {MANIFEST}: not a backup, or an incomplete one") from None
    except msgspec.DecodeError as exc:
        raise OpsError(f"{source / MANIFEST} is not a valid backup manifest: {exc}") from None
    if manifest.format != FORMAT:
        raise OpsError(f"backup format {manifest.format} is not supported (expected {FORMAT})")
    return manifest


def verify(source: Path, manifest: Manifest, say: Say) -> None:
    """Every file present with its recorded size and SHA-256, before anything is changed."""
    say(f"verifying {len(manifest.files) + 1} files")
    entries = [(source / DUMP, manifest.database)]
    entries += [(source / STORAGE / f.key, f) for f in manifest.files]
    for path, entry in entries:
        if not path.is_file() or path.stat().st_size != entry.size:
            raise OpsError(f"backup file {entry.key} is missing or has the wrong size")
        if sha256_file(path) != entry.sha256:
            raise OpsError(f"backup file {entry.key} does not match its checksum")


def _storage_objects(store: ObjectStore, *, force: bool) -> list[str]:
    existing = [o.key for o in store.list("")]
    if existing and not force:
        raise OpsError("the target storage is not empty; restore into a fresh data directory or "
                       "bucket, or pass --force to replace its contents")
    return existing


async def _database_in_use(db: Database, *, force: bool) -> bool:
    """Check the target database; True when it has tables that must be dropped first."""
    if await db.val(Q["other_rat_sessions"]):
        raise OpsError("a RAT server is connected to the target database; stop it first")
    if not await db.val(Q["public_tables"]):
        return False
    # A migrated RAT database with no pipelines, runs or zones is empty; any other is not.
    is_rat = await db.val(Q["rat_tables"]) == RAT_TABLES
    holds_data = not is_rat or bool(await db.val(Q["rat_rows"]))
    if holds_data and not force:
        raise OpsError("the target database holds RAT data; restore into a fresh database, or "
                       "pass --force to replace it")
    return True


async def _empty_target(db: Database, store: ObjectStore, *, force: bool) -> None:
    """Refuse a target with data unless forced; then leave both database and storage empty."""
    drop_schema = await _database_in_use(db, force=force)
    stale = await asyncio.to_thread(_storage_objects, store, force=force)
    if drop_schema:
        await db.exec(Q["drop_public_schema"])
        await db.exec(Q["create_public_schema"])
    for key in stale:
        await asyncio.to_thread(store.delete, key)


def _restore_order(files: list[FileEntry]) -> list[FileEntry]:
    """Data first, then manifests, manifest lists and metadata JSON (each needs the previous)."""
    def rank(entry: FileEntry) -> int:
        if not is_metadata_key(entry.key):
            return 0
        if entry.key.endswith(".avro"):
            return 2 if is_manifest_list(entry.key) else 1
        return 3

    return sorted(files, key=rank)


def copy_back(source: Path, store: ObjectStore, manifest: Manifest,
              relocator: Relocator | None) -> int:
    """Put every backed-up object into the target store; returns how many were rewritten."""
    warehouse = manifest.storage.warehouse.rstrip("/") + "/"
    tables = warehouse.removeprefix(manifest.storage.root)  # the warehouse as a key prefix
    rewritten = 0
    for entry in _restore_order(manifest.files):
        path = source / STORAGE / entry.key
        if relocator is not None and entry.key.startswith(tables) and is_metadata_key(entry.key):
            store.write(entry.key, relocator.rewrite(entry.key, path.read_bytes()))
            rewritten += 1
        else:
            store.put_file(entry.key, path)
    return rewritten


async def _relocate_rows(db: Database, old: str, new: str) -> int:
    count = await db.execrows(Q["relocate_run_landing_files"], old, new)
    if await db.val(Q["catalog_present"]):
        count += await db.execrows(CATALOG["relocate_tables"], old, new)
        count += await db.execrows(CATALOG["relocate_namespace_properties"], old, new)
    return count


def _relocator(manifest: Manifest, spec: StorageSpec, say: Say) -> Relocator | None:
    new_root = root_uri(spec)
    if manifest.storage.root == new_root:
        return None
    if manifest.catalog_type != "sql":
        say("warning: the Iceberg REST catalog keeps its own table locations; restore its backup "
            "and keep the storage location, or tables will point at the old one")
        return None
    say(f"relocating tables from {manifest.storage.root} to {new_root}")
    return Relocator(manifest.storage.root, new_root)


def _restore_key(source: Path, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / KEY_FILE, data_dir / KEY_FILE)
    (data_dir / KEY_FILE).chmod(0o600)


async def run_restore(settings: Settings, source: Path, store: ObjectStore, spec: StorageSpec,
                      say: Say, *, force: bool) -> RestoreReport:
    manifest = read_manifest(source)
    await asyncio.to_thread(verify, source, manifest, say)
    async with open_database(settings, "rat-restore", create=True) as (db, dsn):
        await _empty_target(db, store, force=force)
        relocator = _relocator(manifest, spec, say)
        say("loading the Postgres dump")
        await asyncio.to_thread(load, dsn, source / DUMP)
        say(f"copying {len(manifest.files)} objects into storage")
        rewritten = await asyncio.to_thread(copy_back, source, store, manifest, relocator)
        rows = 0
        if relocator is not None:
            rows = await _relocate_rows(db, relocator.old, relocator.new)
    if manifest.secret_key and not settings.secret_key:
        await asyncio.to_thread(_restore_key, source, settings.data_path)
    return RestoreReport(files=len(manifest.files), bytes=sum(f.size for f in manifest.files),
                         relocated_from=relocator.old if relocator else None,
                         relocated_files=rewritten, relocated_rows=rows)
