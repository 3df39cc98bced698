"""Community edition with RAT_API_KEY: one shared bearer key everywhere except public routes."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RatServer, start_server

KEY = "community-shared-key-123"


@pytest.fixture(scope="module")
def keyed(pg_base: str, template_db: str) -> Iterator[RatServer]:
    server = start_server(pg_base, template_db, "local", None, {"RAT_API_KEY": KEY})
    try:
        yield server
    finally:
        server.stop()


def test_api_key_required_except_public(keyed: RatServer) -> None:
    with keyed.client() as c:
        assert c.get("/pipelines").status_code == 401
        assert c.get("/pipelines", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert c.get("/features").json()["multi_user"] is False
        ok = c.get("/pipelines", headers={"Authorization": f"Bearer {KEY}"})
        assert ok.status_code == 200
        me = c.get("/me", headers={"Authorization": f"Bearer {KEY}"}).json()
        assert me["roles"] == ["admin"]
        assert c.get("/tokens", headers={"Authorization": f"Bearer {KEY}"}).status_code == 501
    assert httpx.get(f"{keyed.url}/health").status_code == 200
    doc = httpx.get(f"{keyed.url}/schema/openapi.json").json()
    assert doc["paths"]["/api/v1/runs"]["post"]["requestBody"]


def test_ui_asks_for_the_key_once(keyed: RatServer) -> None:
    with httpx.Client(base_url=keyed.url, follow_redirects=False, timeout=30) as c:
        assert c.get("/", headers={"Accept": "text/html"}).status_code == 303
        c.get("/login")
        done = c.post("/login", data={"token": KEY, "next": "/",
                                      "_csrf_token": c.cookies.get("csrftoken")})
        assert done.status_code == 303
        home = c.get("/", headers={"Accept": "text/html"})
        assert home.status_code == 200
        assert "Log out" not in home.text
