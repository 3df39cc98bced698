"""CORS over real HTTP: same-origin only by default; RAT_CORS_ORIGINS lets listed origins call /api/v1.

The server also has RAT_API_KEY so the test can show that a cross-origin call authenticates by
bearer token only: the UI session cookie is ignored on it.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RatServer, start_server, unique

APP = "https://app.example.test"
OTHER = "http://localhost:5173"
EVIL = "https://evil.example.test"
KEY = "cors-shared-key-123"
PREFLIGHT = {"Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "authorization, content-type"}


@pytest.fixture(scope="module")
def cors(pg_base: str, template_db: str) -> Iterator[RatServer]:
    server = start_server(pg_base, template_db, "local", None,
                          {"RAT_CORS_ORIGINS": f"{APP}, {OTHER}/", "RAT_API_KEY": KEY})
    try:
        yield server
    finally:
        server.stop()


def _from(origin: str, **extra: str) -> dict[str, str]:
    return {"Origin": origin, "Sec-Fetch-Site": "cross-site", **extra}


def test_preflight_of_a_listed_origin(cors: RatServer) -> None:
    for origin in (APP, OTHER):
        r = httpx.options(f"{cors.url}/api/v1/pipelines", headers=_from(origin, **PREFLIGHT))
        assert r.status_code == 204, r.text
        assert r.headers["access-control-allow-origin"] == origin
        assert "POST" in r.headers["access-control-allow-methods"]
        assert "authorization" in r.headers["access-control-allow-headers"]
        assert "content-type" in r.headers["access-control-allow-headers"]
        assert int(r.headers["access-control-max-age"]) > 0
        assert "access-control-allow-credentials" not in r.headers
        assert r.headers["vary"] == "Origin"
        assert r.headers["x-content-type-options"] == "nosniff"


def test_listed_origin_reads_and_writes_with_a_bearer_token(cors: RatServer) -> None:
    auth = {"Authorization": f"Bearer {KEY}"}
    listed = httpx.get(f"{cors.url}/api/v1/pipelines", headers=_from(APP, **auth))
    assert listed.status_code == 200
    assert listed.headers["access-control-allow-origin"] == APP
    assert "x-request-id" in listed.headers["access-control-expose-headers"]
    name = unique("cors")
    created = httpx.post(f"{cors.url}/api/v1/pipelines", headers=_from(APP, **auth),
                         json={"layer": "bronze", "name": name, "source": "SELECT 1 AS x"})
    assert created.status_code == 201, created.text
    assert created.headers["access-control-allow-origin"] == APP
    denied = httpx.get(f"{cors.url}/api/v1/pipelines", headers=_from(APP))
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == APP  # the browser can read why


def test_unlisted_origin_gets_no_grant(cors: RatServer) -> None:
    pre = httpx.options(f"{cors.url}/api/v1/pipelines", headers=_from(EVIL, **PREFLIGHT))
    assert "access-control-allow-origin" not in pre.headers
    auth = {"Authorization": f"Bearer {KEY}"}
    read = httpx.get(f"{cors.url}/api/v1/pipelines", headers=_from(EVIL, **auth))
    assert "access-control-allow-origin" not in read.headers
    assert read.headers["vary"] == "Origin"
    write = httpx.post(f"{cors.url}/api/v1/pipelines", headers=_from(EVIL, **auth),
                       json={"layer": "bronze", "name": unique("evil")})
    assert write.status_code == 403
    assert "access-control-allow-origin" not in write.headers
    page = httpx.get(f"{cors.url}/health", headers=_from(APP))
    assert "access-control-allow-origin" not in page.headers  # only /api/v1 is shared


def test_session_cookie_is_ignored_on_cross_origin_calls(cors: RatServer) -> None:
    with httpx.Client(base_url=cors.url, timeout=30) as c:
        c.get("/login")
        done = c.post("/login", data={"token": KEY, "next": "/",
                                      "_csrf_token": c.cookies.get("csrftoken")},
                      follow_redirects=False)
        assert done.status_code == 303
        assert c.get("/api/v1/pipelines").status_code == 200  # same origin: the session works
        cross = c.get("/api/v1/pipelines", headers=_from(APP))
        assert cross.status_code == 401


def test_default_is_same_origin_only(local_server: RatServer) -> None:
    pre = httpx.options(f"{local_server.url}/api/v1/pipelines",
                        headers=_from(APP, **PREFLIGHT))
    assert "access-control-allow-origin" not in pre.headers
    read = httpx.get(f"{local_server.url}/api/v1/pipelines", headers=_from(APP))
    assert read.status_code == 200
    assert "access-control-allow-origin" not in read.headers
    write = httpx.post(f"{local_server.url}/api/v1/pipelines", headers=_from(APP),
                       json={"layer": "bronze", "name": unique("x")})
    assert write.status_code == 403
