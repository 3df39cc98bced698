"""Settings from RAT_* environment variables and an optional rat.yaml, validated once at start."""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
import yaml

_ENV_PREFIX = "RAT_"
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "TB": 1000**4,
    "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3, "TIB": 1024**4,
}
# rat.yaml groups some settings under a different nested name than the flat env variable.
_YAML_ALIASES = {"workers_count": "workers", "workers_memory_limit": "worker_memory_limit",
                 "workers_threads": "worker_threads"}
_SECRET_FIELDS = ("s3_access_key", "s3_secret_key", "catalog_token", "catalog_credential",
                  "api_key", "secret_key", "metrics_token", "database_url")
REPO_ROOT = Path(__file__).resolve().parents[2]


class ConfigError(Exception):
    """A setting is invalid; the message names it."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    host: str = "127.0.0.1"
    port: int = 8080
    base_url: str = ""
    data_dir: str = "./.rat"
    database_url: str = ""
    db_pool_size: int = 10
    s3_bucket: str = ""
    s3_endpoint: str = ""
    s3_region: str = "us-east-1"
    s3_prefix: str = ""
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_use_ssl: bool | None = None
    s3_path_style: bool = True
    catalog_type: Literal["sql", "rest"] = "sql"
    catalog_uri: str = ""
    catalog_name: str = "rat"
    catalog_warehouse: str = ""
    catalog_token: str = ""
    catalog_credential: str = ""
    workers: int = 0
    worker_memory_limit: str = "2GB"
    worker_threads: int = 2
    worker_cpu_seconds: int = 14400
    worker_max_processes: int = 256
    worker_max_open_files: int = 4096
    worker_scratch_limit: str = "50GB"
    sandbox: Literal["auto", "on", "off"] = "auto"
    preview_workers: int = 1
    preview_timeout_seconds: int = 120
    query_workers: int = 2
    query_timeout_seconds: int = 60
    query_memory_limit: str = "1GB"
    query_default_limit: int = 1000
    query_max_rows: int = 10000
    query_export_max_rows: int = 1_000_000
    quality_test_timeout_seconds: int = 60
    upload_max_bytes: int = 536_870_912
    lease_seconds: int = 30
    heartbeat_seconds: int = 5
    scheduler_enabled: bool = True
    scheduler_tick_seconds: float = 5.0
    shutdown_grace_seconds: int = 30
    sse_max_seconds: int = 1800
    rate_limit_rps: float = 50.0
    rate_limit_burst: int = 100
    trusted_proxies: str = ""
    cors_origins: str = ""
    api_key: str = ""
    secret_key: str = ""
    plugins: str = ""
    metrics_token: str = ""
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"
    plugin_config: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_ranges(self)
        try:
            parse_origins(self.cors_origins)
        except ValueError as exc:
            raise ConfigError(f"invalid setting RAT_CORS_ORIGINS: {exc}") from None

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @property
    def worker_count(self) -> int:
        return self.workers or min(4, os.cpu_count() or 1)

    @property
    def uses_s3(self) -> bool:
        return bool(self.s3_bucket)

    @property
    def s3_secure(self) -> bool:
        if self.s3_use_ssl is not None:
            return self.s3_use_ssl
        return not self.s3_endpoint.startswith("http://")

    @property
    def worker_memory_bytes(self) -> int:
        return parse_size(self.worker_memory_limit)

    def redacted(self) -> dict[str, Any]:
        """The settings as a mapping with every secret replaced, for logs and the settings page."""
        out = msgspec.structs.asdict(self)
        for name in _SECRET_FIELDS:
            if out.get(name):
                out[name] = "***"
        return out


def _check_ranges(s: Settings) -> None:
    positive = ("port", "db_pool_size", "worker_threads", "worker_max_processes",
                "worker_max_open_files", "preview_workers", "query_workers",
                "query_timeout_seconds", "query_default_limit", "query_max_rows",
                "query_export_max_rows", "quality_test_timeout_seconds", "upload_max_bytes",
                "lease_seconds", "heartbeat_seconds", "preview_timeout_seconds", "sse_max_seconds")
    for name in positive:
        if getattr(s, name) < 1:
            raise ConfigError(f"invalid setting {env_name(name)}: must be >= 1")
    if s.port > 65535:
        raise ConfigError(f"invalid setting {env_name('port')}: must be <= 65535")
    if s.workers < 0 or s.rate_limit_rps < 0 or s.rate_limit_burst < 0:
        raise ConfigError("invalid setting: RAT_WORKERS and rate limits must be >= 0")
    if s.scheduler_tick_seconds <= 0:
        raise ConfigError(f"invalid setting {env_name('scheduler_tick_seconds')}: must be > 0")
    for name in ("worker_memory_limit", "query_memory_limit", "worker_scratch_limit"):
        try:
            parse_size(getattr(s, name))
        except ValueError as exc:
            raise ConfigError(f"invalid setting {env_name(name)}: {exc}") from None
    if s.catalog_type == "rest" and not s.catalog_uri:
        raise ConfigError("invalid setting RAT_CATALOG_URI: required when RAT_CATALOG_TYPE=rest")
    _check_networks(s.trusted_proxies)
    if s.lease_seconds <= s.heartbeat_seconds:
        raise ConfigError("invalid setting RAT_LEASE_SECONDS: must exceed RAT_HEARTBEAT_SECONDS")


def _check_networks(text: str) -> None:
    for item in (part.strip() for part in text.split(",")):
        try:
            if item:
                ipaddress.ip_network(item, strict=False)
        except ValueError:
            raise ConfigError(f"invalid setting RAT_TRUSTED_PROXIES: {item!r} is not an IP "
                              "address or CIDR") from None


def parse_origins(text: str) -> frozenset[str]:
    """A comma list of browser origins (`scheme://host[:port]`, no path), normalised."""
    origins = set()
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        if parts.scheme not in ("http", "https") or not parts.netloc or "@" in parts.netloc or \
                parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"{item!r} is not an origin like https://app.example.com")
        origins.add(f"{parts.scheme}://{parts.netloc.lower()}")
    return frozenset(origins)


def env_name(field: str) -> str:
    return _ENV_PREFIX + field.upper()


def parse_size(text: str) -> int:
    """Parse '2GB', '512MiB' or a plain byte count."""
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a size like 2GB or 512MB")
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "B").upper()])


def _flatten(prefix: str, value: Any, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and prefix != "plugin_config":
        for key, sub in value.items():
            _flatten(f"{prefix}_{key}" if prefix else str(key), sub, out)
        return
    out[_YAML_ALIASES.get(prefix, prefix)] = value


def _yaml_settings(path: Path) -> dict[str, Any]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    plugins = raw.pop("plugins", None) or {}
    if not isinstance(plugins, dict):
        raise ConfigError(f"{path}: 'plugins' must be a mapping of plugin blocks")
    out: dict[str, Any] = {}
    _flatten("", raw, out)
    out["plugin_config"] = plugins
    return out


def _read_secret_files(values: dict[str, Any], source: str) -> None:
    for key in [k for k in values if k.endswith("_file")]:
        target = key.removesuffix("_file")
        try:
            values[target] = Path(str(values.pop(key))).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"invalid setting {source}{key.upper()}: {exc.strerror}") from None


def _env_settings(environ: dict[str, str]) -> dict[str, Any]:
    fields = set(Settings.__struct_fields__) - {"plugin_config"}
    out: dict[str, Any] = {}
    for name, value in environ.items():
        if not name.startswith(_ENV_PREFIX):
            continue
        key = name.removeprefix(_ENV_PREFIX).lower()
        if key in fields or (key.endswith("_file") and key.removesuffix("_file") in fields):
            out[key] = value
    return out


def _coerce_env(values: dict[str, Any]) -> dict[str, Any]:
    """Env values are strings; turn booleans and numbers into what the field expects."""
    out = dict(values)
    for key, value in values.items():
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
            annotation = Settings.__annotations__.get(key, "")
            if "bool" in str(annotation):
                out[key] = value.strip().lower() in ("true", "yes", "1")
    return out


def load_settings(environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
    """Merge defaults, rat.yaml and RAT_* variables (highest wins) and validate them.

    Raises ConfigError with one line naming the bad setting.
    """
    env = dict(os.environ if environ is None else environ)
    yaml_path = Path(env.get("RAT_CONFIG", "rat.yaml"))
    values: dict[str, Any] = {}
    if "RAT_CONFIG" in env or yaml_path.exists():
        values = _yaml_settings(yaml_path)
        _read_secret_files(values, "rat.yaml: ")
    env_values = _env_settings(env)
    _read_secret_files(env_values, _ENV_PREFIX)
    values.update(_coerce_env(env_values))
    values.update(overrides)
    known = set(Settings.__struct_fields__)
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown setting {key!r} in rat.yaml")
    try:
        return msgspec.convert(values, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(exc)) from None


def _explain(exc: msgspec.ValidationError) -> str:
    text = str(exc)
    m = re.search(r"at `\$\.([a-z_0-9]+)`", text)
    if not m:
        return f"invalid settings: {text}"
    return f"invalid setting {env_name(m.group(1))}: {text.split(' - at ')[0]}"


TEMPLATES_DIR = REPO_ROOT / "templates"
STATIC_DIR = REPO_ROOT / "static"
MIGRATIONS_DIR = REPO_ROOT / "migrations"
