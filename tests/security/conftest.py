"""A RAT with small per-job limits, so the hostile suite reaches them quickly."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import RatServer, S3Server, start_server

LIMITS = {"RAT_WORKER_MEMORY_LIMIT": "512MB", "RAT_WORKER_CPU_SECONDS": "8",
          "RAT_WORKER_MAX_PROCESSES": "64", "RAT_SANDBOX": "on"}


@pytest.fixture(scope="module", params=["local", "s3"])
def hostile_server(request: pytest.FixtureRequest, pg_base: str, template_db: str,
                   s3_server: S3Server) -> Iterator[RatServer]:
    server = start_server(pg_base, template_db, request.param, s3_server, LIMITS)
    server.backend = request.param  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()
