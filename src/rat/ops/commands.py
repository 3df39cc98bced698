"""The `rat backup` and `rat restore` commands: progress on stderr, a summary on stdout."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from rat.config import Settings
from rat.core.specs import StorageSpec
from rat.engine.relocate import RelocationError
from rat.ops.backup import Say, run_backup
from rat.ops.postgres import OpsError
from rat.ops.restore import run_restore
from rat.storage.base import ObjectStore


def _say(command: str) -> Say:
    def say(message: str) -> None:
        print(f"rat {command}: {message}", file=sys.stderr, flush=True)  # noqa: T201

    return say


def backup_command(settings: Settings, target: Path, store: ObjectStore, spec: StorageSpec,
                   warehouse: str) -> int:
    say = _say("backup")
    try:
        manifest = asyncio.run(run_backup(settings, target, store, spec, warehouse, say))
    except OpsError as exc:
        print(f"rat backup: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    size = manifest.database.size + sum(f.size for f in manifest.files)
    print(f"backup written to {target}: database dump and {len(manifest.files)} objects, "  # noqa: T201
          f"{size} bytes")
    for key in manifest.vanished:
        print(f"  deleted while copying (not in the backup): {key}")  # noqa: T201
    return 0


def restore_command(settings: Settings, source: Path, store: ObjectStore, spec: StorageSpec, *,
                    force: bool) -> int:
    say = _say("restore")
    try:
        report = asyncio.run(run_restore(settings, source, store, spec, say, force=force))
    except (OpsError, RelocationError) as exc:
        print(f"rat restore: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    print(f"restored {report.files} objects ({report.bytes} bytes) and the database "  # noqa: T201
          f"from {source}")
    if report.relocated_from:
        print(f"  tables relocated from {report.relocated_from}: {report.relocated_files} "  # noqa: T201
              f"metadata files and {report.relocated_rows} catalog rows rewritten")
    return 0
