"""The `rat` command line: serve, migrate, tokens create, check-config, version."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from rat import __version__
from rat.config import MIGRATIONS_DIR, ConfigError, Settings, load_settings

if TYPE_CHECKING:
    from rat.core.specs import StorageSpec
    from rat.storage.base import ObjectStore


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"rat: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None


def serve(_args: argparse.Namespace) -> int:
    import uvicorn

    class Server(uvicorn.Server):
        """SIGTERM/SIGINT: graceful shutdown, exit 0; a second signal: exit at once (exit 1).

        uvicorn re-raises the signal after a graceful shutdown (exit status 143); a server that
        shut down as asked did not fail, so it exits 0 instead.
        """

        def handle_exit(self, sig: int, frame: object) -> None:
            if self.should_exit:
                raise SystemExit(1)
            self.should_exit = True
            runtime = app.state.get("runtime")
            if runtime is not None:  # stop claiming runs now, not after HTTP connections drain
                asyncio.get_running_loop().call_soon_threadsafe(runtime.drain)

    from rat.app import create_app
    from rat.logs import configure

    settings = _settings()
    configure(settings.log_level, settings.log_format)
    try:
        app = create_app(settings, announce=True)
    except ConfigError as exc:
        print(f"rat: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None,
                            access_log=False, lifespan="on", timeout_graceful_shutdown=
                            settings.shutdown_grace_seconds + 5, proxy_headers=False)
    server = Server(config)
    try:
        server.run()
    except SystemExit:  # uvicorn exits 3 when start-up fails
        if not app.state.get("fatal"):
            raise
    fatal = app.state.get("fatal")
    if fatal:  # a plugin selected for a single-instance slot failed while starting
        print(f"rat: {fatal}", file=sys.stderr)  # noqa: T201
        return 2
    return 0 if server.started else 1


def migrate(_args: argparse.Namespace) -> int:
    from rat.app import Runtime
    from rat.db.migrate import apply_migrations

    settings = _settings()

    async def run() -> list[str]:
        runtime = Runtime(settings)
        if settings.database_url:
            return await apply_migrations(settings.database_url, MIGRATIONS_DIR)
        await runtime.start_database()
        try:
            return []
        finally:
            if runtime.db is not None:
                await runtime.db.close()
            if runtime.embedded is not None:
                runtime.embedded.stop()

    applied = asyncio.run(run())
    print(f"applied {len(applied)} migration(s)" if applied else "database is up to date")  # noqa: T201
    return 0


def _storage(settings: Settings) -> tuple[StorageSpec, ObjectStore]:
    """The server's storage, a `storage` plugin's included."""
    from rat.app import open_storage
    from rat.plugins.host import FatalPluginError, PluginHost

    try:
        return open_storage(settings, PluginHost.load(settings))
    except FatalPluginError as exc:
        print(f"rat: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None


def backup(args: argparse.Namespace) -> int:
    from rat.ops.commands import backup_command

    settings = _settings()
    spec, store = _storage(settings)
    warehouse = settings.catalog_warehouse or spec.uri("_warehouse")
    return backup_command(settings, Path(args.dir), store, spec, warehouse)


def restore(args: argparse.Namespace) -> int:
    from rat.ops.commands import restore_command

    settings = _settings()
    spec, store = _storage(settings)
    return restore_command(settings, Path(args.dir), store, spec, force=args.force)


def tokens_create(args: argparse.Namespace) -> int:
    """Bootstrap an API token straight in the database (the first admin needs one)."""
    from rat.app import Runtime
    from rat.plugins.builtin.auth import TokenStore

    settings = _settings()

    async def run() -> str:
        runtime = Runtime(settings)
        await runtime.start_database()
        assert runtime.db is not None  # noqa: S101
        try:
            token = await TokenStore(runtime.db).create(
                user_id=args.user, name=args.name, roles=["admin"] if args.admin else [],
                expires_at=None)
            return token.token
        finally:
            await runtime.db.close()
            if runtime.embedded is not None:
                runtime.embedded.stop()

    print(asyncio.run(run()))  # noqa: T201 - the token is shown once
    return 0


def check_config(_args: argparse.Namespace) -> int:
    settings = _settings()
    for key, value in settings.redacted().items():
        print(f"{key} = {value!r}")  # noqa: T201
    return 0


def version(_args: argparse.Namespace) -> int:
    print(__version__)  # noqa: T201
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="rat", description="RAT: the SQLite of data platforms")
    sub = root.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="start the server").set_defaults(fn=serve)
    sub.add_parser("migrate", help="apply database migrations").set_defaults(fn=migrate)
    cmd = sub.add_parser("backup", help="back up Postgres state, catalog and storage into DIR")
    cmd.add_argument("dir")
    cmd.set_defaults(fn=backup)
    cmd = sub.add_parser("restore", help="restore a backup into the configured (empty) target")
    cmd.add_argument("dir")
    cmd.add_argument("--force", action="store_true", help="replace a target that holds data")
    cmd.set_defaults(fn=restore)
    sub.add_parser("check-config", help="validate and print the settings").set_defaults(
        fn=check_config)
    sub.add_parser("version", help="print the version").set_defaults(fn=version)
    tokens = sub.add_parser("tokens", help="manage API tokens (rat-auth)").add_subparsers(
        dest="tokens_command", required=True)
    create = tokens.add_parser("create", help="create an API token and print it once")
    create.add_argument("--user", required=True, help="user id the token authenticates as")
    create.add_argument("--admin", action="store_true", help="give the token the admin role")
    create.add_argument("--name", default="cli", help="a label for the token")
    create.set_defaults(fn=tokens_create)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result: int = args.fn(args)
    return result
