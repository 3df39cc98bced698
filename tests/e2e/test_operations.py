"""Operations over HTTP against real servers: metrics, request ids, headers, limits."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RatServer, start_server, unique, wait_run

LONG_SQL = "SELECT count(*) AS n FROM range(100000000000) t(x) WHERE x % 7 = 3"


def _create(client: httpx.Client, name: str, source: str, layer: str = "silver") -> None:
    resp = client.post("/pipelines", json={"namespace": "default", "layer": layer, "name": name,
                                           "source": source})
    assert resp.status_code == 201, resp.text


def _start_run(client: httpx.Client, name: str, layer: str = "silver",
               headers: dict[str, str] | None = None) -> str:
    resp = client.post("/runs", json={"namespace": "default", "layer": layer, "pipeline": name},
                       headers=headers)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["run_id"])


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text, by metric name and exact labels."""
    for line in text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        found = dict(re.findall(r'(\w+)="([^"]*)"', head))
        if head.split("{")[0] == name and found == labels:
            return float(value)
    raise AssertionError(f"no sample {name}{labels} in metrics")


def test_metrics_report_http_runs_workers_and_leader(local_server: RatServer) -> None:
    name = unique("m")
    with local_server.client() as client:
        _create(client, name, "SELECT 1 AS id")
        run = wait_run(client, _start_run(client, name))
        assert run["status"] == "success"
        client.get("/no-such-endpoint")
    resp = httpx.get(f"{local_server.url}/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = resp.text
    assert _sample(text, "rat_http_requests_total", method="POST", route="/api/v1/runs",
                   status="202") >= 1
    assert _sample(text, "rat_http_requests_total", method="GET", route="unmatched",
                   status="404") >= 1
    assert _sample(text, "rat_http_request_duration_seconds_count", method="POST",
                   route="/api/v1/pipelines") >= 1
    assert _sample(text, "rat_runs", status="success") >= 1
    assert _sample(text, "rat_runs_completed_total", status="success") >= 1
    assert _sample(text, "rat_run_duration_seconds_count", status="success") >= 1
    assert _sample(text, "rat_run_queue_depth", state="pending") >= 0
    assert _sample(text, "rat_worker_pool_size", pool="run") == 2
    assert _sample(text, "rat_worker_pool_alive", pool="query") == 1
    assert _sample(text, "rat_leader") == 1
    assert _sample(text, "rat_db_pool_max") == 10
    assert _sample(text, "rat_state_scrape_ok") == 1
    assert _sample(text, "rat_leader_duty_last_run_timestamp_seconds", duty="lease_monitor") > 0
    for family in ("rat_event_loop_lag_seconds", "rat_scheduler_lag_seconds",
                   "rat_sse_connections", "rat_queries_active", "rat_process_resident_memory_bytes"):
        assert f"# TYPE {family} gauge" in text


def test_request_id_reaches_run_record_and_log_lines(local_server: RatServer) -> None:
    name = unique("rid")
    rid = f"test-{unique('r')}"
    with local_server.client() as client:
        _create(client, name, "SELECT 1 AS id")
        resp = client.post("/runs", json={"namespace": "default", "layer": "silver",
                                          "pipeline": name}, headers={"X-Request-ID": rid})
        assert resp.headers["x-request-id"] == rid
        run = wait_run(client, resp.json()["run_id"])
        assert run["request_id"] == rid
        bad = client.get("/runs", headers={"X-Request-ID": "has spaces!"})
        assert re.fullmatch(r"[0-9a-f]{32}", bad.headers["x-request-id"])
    deadline = time.monotonic() + 5
    while rid not in local_server.log_path.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [line for line in local_server.log_path.read_text().splitlines() if rid in line]
    assert any("POST /api/v1/runs 202" in line and f"request_id={rid}" in line for line in lines)


def test_every_response_has_security_headers_and_request_id(local_server: RatServer) -> None:
    for path in ("/", "/health", "/api/v1/no-such-thing", "/metrics"):
        resp = httpx.get(f"{local_server.url}{path}")
        assert resp.headers["x-content-type-options"] == "nosniff", path
        assert resp.headers["x-frame-options"] == "DENY", path
        assert resp.headers["referrer-policy"] == "strict-origin-when-cross-origin", path
        assert "permissions-policy" in resp.headers, path
        assert resp.headers["x-request-id"], path
        assert "strict-transport-security" not in resp.headers  # plain HTTP, no trusted proxy


def test_body_limits_refuse_large_and_chunked_bodies(api: httpx.Client) -> None:
    big = b'{"namespace": "' + b"x" * (1024 * 1024) + b'"}'
    resp = api.post("/pipelines", content=big, headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["error"]["type"] == "VALIDATION"

    def chunks() -> Iterator[bytes]:  # no Content-Length: the edge counts what is read
        yield b'{"namespace": "'
        for _ in range(20):
            yield b"y" * 65536
        yield b'"}'

    resp = api.post("/pipelines", content=chunks(), headers={"Content-Type": "application/json"})
    assert resp.status_code == 413, resp.text
    assert api.get("/pipelines").status_code == 200  # the server is fine afterwards


@pytest.fixture(scope="module")
def limited_server(pg_base: str, template_db: str) -> Iterator[RatServer]:
    """Rate limit 1/s burst 3, a metrics token, a 1000-byte upload limit, 127.0.0.2 trusted."""
    server = start_server(pg_base, template_db, "local", None, {
        "RAT_RATE_LIMIT_RPS": "1", "RAT_RATE_LIMIT_BURST": "3",
        "RAT_TRUSTED_PROXIES": "127.0.0.2/32", "RAT_METRICS_TOKEN": "s3cret-token",
        "RAT_UPLOAD_MAX_BYTES": "1000"})
    try:
        yield server
    finally:
        server.stop()


def test_rate_limit_429_headers_and_spoofing(limited_server: RatServer) -> None:
    url = f"{limited_server.url}/api/v1/pipelines"
    statuses = []
    for i in range(6):  # a forged X-Forwarded-For from an untrusted peer changes nothing
        resp = httpx.get(url, headers={"X-Forwarded-For": f"198.51.100.{i}"})
        statuses.append(resp.status_code)
    assert statuses[:3] == [200, 200, 200]
    assert 429 in statuses[3:]
    refused = httpx.get(url)
    assert refused.status_code == 429
    assert refused.json()["error"] == {"code": "RESOURCE_EXHAUSTED", "type": "RATE_LIMIT",
                                       "message": "rate limit exceeded; retry later"}
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-limit"] == "3"
    assert refused.headers["ratelimit-remaining"] == "0"
    assert int(refused.headers["ratelimit-reset"]) >= 1
    assert httpx.get(f"{limited_server.url}/health").status_code == 200  # probes never limited

    # Through the trusted proxy (connections from 127.0.0.2) each forwarded client has a bucket.
    proxy = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=proxy) as via_proxy:
        for i in range(3):
            resp = via_proxy.get(url, headers={"X-Forwarded-For": f"203.0.113.{i}"})
            assert resp.status_code == 200, resp.text


def test_metrics_token_and_upload_limit(limited_server: RatServer) -> None:
    time.sleep(3)  # let the rate-limit bucket refill after the previous test
    resp = httpx.get(f"{limited_server.url}/metrics")
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"] == "Bearer"
    resp = httpx.get(f"{limited_server.url}/metrics",
                     headers={"Authorization": "Bearer s3cret-token"})
    assert resp.status_code == 200
    assert "rat_http_rate_limited_total" in resp.text

    files = {"file": ("big.csv", b"a,b\n" * 400_000, "text/csv")}  # 1.6 MB > 1000 + framing
    resp = httpx.post(f"{limited_server.url}/api/v1/landing-zones/default/z/files", files=files)
    assert resp.status_code == 413
    assert resp.json()["error"]["type"] == "VALIDATION"


def test_sse_streams_are_limited_per_client(local_server: RatServer) -> None:
    name = unique("sse")
    with local_server.client() as client:
        _create(client, name, LONG_SQL)
        run_id = _start_run(client, name)
        try:
            statuses = asyncio.run(_open_streams(local_server.url, run_id, 11))
            assert statuses.count(200) == 10
            assert statuses.count(429) == 1
        finally:
            client.post(f"/runs/{run_id}/cancel")


async def _open_streams(url: str, run_id: str, count: int) -> list[int]:
    headers = {"Accept": "text/event-stream"}
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        streams = []
        statuses = []
        try:
            for _ in range(count):
                ctx = client.stream("GET", f"/api/v1/runs/{run_id}/logs", headers=headers)
                resp = await ctx.__aenter__()
                streams.append(ctx)
                statuses.append(resp.status_code)
        finally:
            for ctx in streams:
                await ctx.__aexit__(None, None, None)
    return statuses
