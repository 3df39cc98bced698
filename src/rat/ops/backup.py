"""`rat backup DIR`: a Postgres dump first, then a checksummed copy of storage, then the manifest.

Consistent while RAT runs: the dump is one snapshot; Iceberg data and metadata files are never
changed in place, so whatever the dump references is still there when storage is copied (file
deletions are fenced off for the duration, see `rat.ops.fence`), and files newer than the dump
are orphans the restored catalog does not reference.

Layout of DIR: `postgres.dump` (pg_dump custom format), `storage/<key>` (every object),
`secret_key` (when generated into the data directory) and `manifest.json`, written last: a
directory without it is an incomplete backup and restore refuses it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from rat import __version__
from rat.config import Settings
from rat.core.specs import StorageSpec
from rat.ops.fence import backup_fence
from rat.ops.postgres import OpsError, dump, open_database
from rat.storage.base import ObjectStore

FORMAT = 1
MANIFEST = "manifest.json"
DUMP = "postgres.dump"
STORAGE = "storage"
KEY_FILE = "secret_key"  # the generated RAT_SECRET_KEY in the data dir
_CHUNK = 1 << 20
# Transient objects that are never part of the platform's state.
_SKIP = (".rat-health",)
Say = Callable[[str], None]


class FileEntry(msgspec.Struct, frozen=True):
    key: str
    size: int
    sha256: str


class StorageInfo(msgspec.Struct, frozen=True, kw_only=True):
    kind: str
    root: str
    warehouse: str


class Manifest(msgspec.Struct, kw_only=True):
    format: int = FORMAT
    rat_version: str
    created_at: str
    catalog_type: str
    storage: StorageInfo
    database: FileEntry
    files: list[FileEntry]
    vanished: list[str] = msgspec.field(default_factory=list)
    secret_key: bool = False


def root_uri(spec: StorageSpec) -> str:
    """The storage root as Iceberg paths start with it, with one trailing slash."""
    return spec.uri("").rstrip("/") + "/"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_object(store: ObjectStore, key: str, target: Path) -> FileEntry:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".part")
    digest, size = hashlib.sha256(), 0
    with tmp.open("wb") as out:
        for chunk in store.iter_chunks(key, _CHUNK):
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    tmp.replace(target)
    return FileEntry(key, size, digest.hexdigest())


def copy_storage(store: ObjectStore, target: Path, say: Say) -> tuple[list[FileEntry], list[str]]:
    """Copy every object; one deleted meanwhile (by a user, not the reaper) is listed as vanished."""
    objects = [o for o in store.list("") if o.key.rsplit("/", 1)[-1] not in _SKIP]
    say(f"copying {len(objects)} objects ({sum(o.size for o in objects)} bytes)")
    files: list[FileEntry] = []
    vanished: list[str] = []
    for obj in objects:
        try:
            files.append(_copy_object(store, obj.key, target / obj.key))
        except FileNotFoundError:
            vanished.append(obj.key)
    return files, vanished


def _prepare(settings: Settings, spec: StorageSpec, warehouse: str, target: Path) -> None:
    if target.exists() and any(target.iterdir()):
        raise OpsError(f"{target} is not empty; back up into a new directory")
    if settings.catalog_type == "sql" and not warehouse.startswith(root_uri(spec)):
        raise OpsError("RAT_CATALOG_WAREHOUSE is outside the storage root, so rat backup cannot "
                       "copy it; back that location up separately")
    target.mkdir(parents=True, exist_ok=True)


def _secret_key(settings: Settings, target: Path) -> bool:
    source = settings.data_path / KEY_FILE
    if settings.secret_key or not source.exists():
        return False
    shutil.copyfile(source, target / KEY_FILE)
    (target / KEY_FILE).chmod(0o600)
    return True


def write_manifest(target: Path, manifest: Manifest) -> None:
    tmp = target / (MANIFEST + ".part")
    tmp.write_bytes(msgspec.json.format(msgspec.json.encode(manifest)))
    os.replace(tmp, target / MANIFEST)


def _finish(settings: Settings, spec: StorageSpec, warehouse: str, target: Path,
            copied: tuple[list[FileEntry], list[str]]) -> Manifest:
    files, vanished = copied
    manifest = Manifest(
        rat_version=__version__, created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        catalog_type=settings.catalog_type, files=files, vanished=vanished,
        database=FileEntry(DUMP, (target / DUMP).stat().st_size, sha256_file(target / DUMP)),
        storage=StorageInfo(kind=spec.kind, root=root_uri(spec), warehouse=warehouse),
        secret_key=_secret_key(settings, target))
    write_manifest(target, manifest)
    return manifest


async def run_backup(settings: Settings, target: Path, store: ObjectStore, spec: StorageSpec,
                     warehouse: str, say: Say) -> Manifest:
    await asyncio.to_thread(_prepare, settings, spec, warehouse, target)
    async with open_database(settings, "rat-backup", create=False) as (db, dsn):
        say("waiting for file deletions to pause")
        async with backup_fence(db):
            say("dumping Postgres (platform state and Iceberg catalog)")
            await asyncio.to_thread(dump, dsn, target / DUMP)
            copied = await asyncio.to_thread(copy_storage, store, target / STORAGE, say)
    return await asyncio.to_thread(_finish, settings, spec, warehouse, target, copied)
