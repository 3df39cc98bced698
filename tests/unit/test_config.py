"""Settings: precedence, coercion, and one clear line naming a bad setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from rat.config import ConfigError, load_settings, parse_origins, parse_size


def test_defaults_without_any_configuration(tmp_path: Path) -> None:
    s = load_settings({})
    assert (s.host, s.port, s.data_dir) == ("127.0.0.1", 8080, "./.rat")
    assert s.catalog_type == "sql"
    assert not s.uses_s3
    assert 1 <= s.worker_count <= 4


def test_environment_overrides_yaml(tmp_path: Path) -> None:
    cfg = tmp_path / "rat.yaml"
    cfg.write_text("port: 9000\ns3: {bucket: lake, endpoint: http://minio:9000}\n"
                   "workers: {count: 3, memory_limit: 4GB}\n")
    s = load_settings({"RAT_CONFIG": str(cfg), "RAT_PORT": "9100"})
    assert s.port == 9100
    assert (s.s3_bucket, s.s3_endpoint, s.s3_secure) == ("lake", "http://minio:9000", False)
    assert (s.workers, s.worker_memory_limit) == (3, "4GB")


def test_secret_from_file(tmp_path: Path) -> None:
    secret = tmp_path / "key"
    secret.write_text("s3cr3t\n")
    s = load_settings({"RAT_S3_SECRET_KEY_FILE": str(secret)})
    assert s.s3_secret_key == "s3cr3t"
    assert s.redacted()["s3_secret_key"] == "***"


@pytest.mark.parametrize(("env", "named"), [
    ({"RAT_PORT": "eighty"}, "RAT_PORT"),
    ({"RAT_PORT": "70000"}, "RAT_PORT"),
    ({"RAT_WORKERS": "-1"}, "RAT_WORKERS"),
    ({"RAT_CATALOG_TYPE": "hive"}, "RAT_CATALOG_TYPE"),
    ({"RAT_CATALOG_TYPE": "rest"}, "RAT_CATALOG_URI"),
    ({"RAT_WORKER_MEMORY_LIMIT": "lots"}, "RAT_WORKER_MEMORY_LIMIT"),
    ({"RAT_SCHEDULER_ENABLED": "maybe"}, "RAT_SCHEDULER_ENABLED"),
    ({"RAT_CORS_ORIGINS": "app.example.com"}, "RAT_CORS_ORIGINS"),
    ({"RAT_CORS_ORIGINS": "https://app.example.com/ui"}, "RAT_CORS_ORIGINS"),
    ({"RAT_CORS_ORIGINS": "*"}, "RAT_CORS_ORIGINS"),
])
def test_bad_value_names_the_setting(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env)
    assert named in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_yaml_key_is_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "rat.yaml"
    cfg.write_text("prot: 1\n")
    with pytest.raises(ConfigError, match="prot"):
        load_settings({"RAT_CONFIG": str(cfg)})


def test_sizes() -> None:
    assert parse_size("2GB") == 2_000_000_000
    assert parse_size("512MiB") == 512 * 1024 * 1024
    assert parse_size("1024") == 1024
    with pytest.raises(ValueError):
        parse_size("two gigs")


def test_cors_origins_are_normalised() -> None:
    assert parse_origins(" https://App.Example.com/, http://localhost:5173 ,") == frozenset(
        {"https://app.example.com", "http://localhost:5173"})
    assert parse_origins("") == frozenset()
