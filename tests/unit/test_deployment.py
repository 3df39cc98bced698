"""The Dockerfile and compose.yaml, checked without a Docker engine (none exists on CI)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from rat.config import load_settings

ROOT = Path(__file__).resolve().parents[2]
_DEFAULT = re.compile(r"\$\{[A-Z_]+:-([^}]*)\}")


def _compose() -> dict[str, Any]:
    doc = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(doc, dict)
    return doc


def _resolved(value: object) -> str:
    """A compose value with ${VAR:-default} replaced by its default, as with an empty .env."""
    return _DEFAULT.sub(lambda m: m.group(1), str(value))


def test_compose_runs_rat_with_postgres_minio_and_optional_nessie() -> None:
    services = _compose()["services"]
    assert set(services) == {"rat", "postgres", "minio", "minio-init", "nessie"}
    assert services["nessie"]["profiles"] == ["nessie"]
    assert all("profiles" not in services[s] for s in ("rat", "postgres", "minio", "minio-init"))
    for name in ("rat", "postgres", "minio", "nessie"):
        check = services[name]["healthcheck"]
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check["retries"] >= 3, name
    rat = services["rat"]
    assert rat["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                 "minio-init": {"condition": "service_completed_successfully"}}
    assert "/health/ready" in " ".join(rat["healthcheck"]["test"])
    assert rat["volumes"] == ["rat-data:/data"]
    assert services["minio-init"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert "mb --ignore-existing local/rat" in services["minio-init"]["entrypoint"][-1]


def test_compose_environment_is_valid_rat_configuration() -> None:
    services = _compose()["services"]
    env = {k: _resolved(v) for k, v in services["rat"]["environment"].items()}
    assert all(k.startswith("RAT_") for k in env)
    settings = load_settings(env)  # raises ConfigError on an unknown or invalid setting
    assert settings.uses_s3
    assert settings.s3_bucket == "rat"
    assert settings.s3_endpoint == "http://minio:9000"
    assert not settings.s3_secure
    assert settings.database_url.startswith("postgresql://rat:")
    assert settings.database_url.endswith("@postgres:5432/rat")
    postgres = services["postgres"]["environment"]
    assert _resolved(postgres["POSTGRES_PASSWORD"]) in settings.database_url
    assert settings.s3_secret_key == _resolved(services["minio"]["environment"]["MINIO_ROOT_PASSWORD"])
    # The stop timeout leaves room for the drain: grace period plus a margin.
    grace = int(services["rat"]["stop_grace_period"].removesuffix("s"))
    assert grace > settings.shutdown_grace_seconds


def test_compose_nessie_profile_points_at_the_same_bucket() -> None:
    services = _compose()["services"]
    nessie = {k: _resolved(v) for k, v in services["nessie"]["environment"].items()}
    assert nessie["nessie.catalog.warehouses.rat.location"].startswith("s3://rat/")
    assert nessie["nessie.version.store.type"] == "JDBC2"
    assert nessie["quarkus.datasource.postgresql.jdbc.url"].endswith("/nessie")
    mounts = services["postgres"]["volumes"]
    init = next(m for m in mounts if "docker-entrypoint-initdb.d" in m)
    assert (ROOT / init.split(":")[0]).read_text().count("CREATE DATABASE nessie") == 1
    rest = load_settings({"RAT_CATALOG_TYPE": "rest",
                          "RAT_CATALOG_URI": "http://nessie:19120/iceberg"})
    assert rest.catalog_type == "rest"


def test_dockerfile_non_root_healthcheck_and_layout() -> None:
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip()
             and not line.lstrip().startswith("#")]
    users = [line.split()[1] for line in lines if line.startswith("USER ")]
    assert users
    assert users[-1].split(":")[0] not in ("root", "0")
    assert "useradd --system --uid 10001" in text
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert "/health/ready" in text
    assert "EXPOSE 8080" in lines
    assert lines[-1] == 'CMD ["rat", "serve"]'
    assert "RAT_HOST=0.0.0.0" in text
    assert "RAT_DATA_DIR=/data" in text
    for folder in ("src", "migrations", "templates", "static"):
        assert f"COPY {folder} ./{folder}" in lines
        assert (ROOT / folder).is_dir()
    assert ".venv" in (ROOT / ".dockerignore").read_text().split()
