"""DuckDB connections: extensions loaded from their wheels, limits, storage access and lockdown."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from rat.core.specs import StorageSpec

if TYPE_CHECKING:
    import duckdb

# avro must be loaded before iceberg: the iceberg extension reads manifests through it.
EXTENSIONS = ("httpfs", "avro", "iceberg")
HTTP_RETRIES = 8


def extension_path(name: str) -> str:
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the duckdb-extension-{name} package is not installed")
    base = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(base.glob(f"extensions/*/{name}.duckdb_extension"))
    if not found:
        raise RuntimeError(f"duckdb-extension-{name} has no extension file")
    return str(found[-1])


def sql_str(value: str) -> str:
    """A single-quoted SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def connect(*, memory_limit: str, threads: int, temp_dir: str | None = None,
            storage: StorageSpec | None = None,
            config: dict[str, str | bool | int] | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with our extensions loaded and S3 credentials configured.

    `config` adds start-up settings (some, like `allow_persistent_secrets`, cannot change once
    a secret exists).
    """
    import duckdb

    con = duckdb.connect(":memory:", config={
        "autoinstall_known_extensions": False, "autoload_known_extensions": False,
        "memory_limit": memory_limit, "threads": threads, **(config or {})})
    for name in EXTENSIONS:
        con.execute(f"LOAD {sql_str(extension_path(name))}")
    if temp_dir:
        Path(temp_dir).mkdir(parents=True, exist_ok=True)
        con.execute(f"SET temp_directory = {sql_str(temp_dir)}")
    if storage is not None and storage.kind == "s3":
        _s3_secret(con, storage)
    return con


def _s3_secret(con: duckdb.DuckDBPyConnection, s: StorageSpec) -> None:
    endpoint = s.endpoint.split("://", 1)[-1].rstrip("/")
    parts = [
        "TYPE s3", f"KEY_ID {sql_str(s.access_key)}", f"SECRET {sql_str(s.secret_key)}",
        f"REGION {sql_str(s.region)}", f"USE_SSL {str(s.use_ssl).lower()}",
        f"URL_STYLE {sql_str('path' if s.path_style else 'vhost')}",
    ]
    if endpoint:
        parts.append(f"ENDPOINT {sql_str(endpoint)}")
    con.execute(f"CREATE OR REPLACE SECRET rat_storage ({', '.join(parts)})")
    # httpfs retries connection errors and 5xx itself; 3 tries 100 ms apart (its default) lose
    # to a reset storm. 8 tries with doubling waits span ~25 s.
    con.execute(f"SET http_retries = {HTTP_RETRIES}")
    con.execute("SET http_retry_wait_ms = 100")
    con.execute("SET http_retry_backoff = 2")


def lock_down(con: duckdb.DuckDBPyConnection, allowed: Iterable[str]) -> None:
    """Limit file access to `allowed` prefixes, disable everything else, and freeze the settings."""
    dirs = ", ".join(sql_str(d.rstrip("/") + "/") for d in allowed)
    con.execute(f"SET allowed_directories = [{dirs}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


LOCKDOWN_SETTINGS = ("enable_external_access", "lock_configuration",
                     "autoinstall_known_extensions", "autoload_known_extensions")


def read_lockdown(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The lockdown-relevant settings as DuckDB reports them, to verify what we set."""
    names = ", ".join(sql_str(n) for n in LOCKDOWN_SETTINGS)
    rows = con.execute(
        f"SELECT name, value FROM duckdb_settings() WHERE name IN ({names})").fetchall()
    return {str(n): str(v) for n, v in rows}
