"""A person logs into the web UI with "Log in with <provider>" (OIDC code + PKCE) in Chromium.

The provider is the test's own (tests/e2e/oidc_support.py); it approves at once, so the browser
goes RAT -> provider -> RAT callback -> the page the person asked for, logged in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Browser, expect

from tests.browser.conftest import screenshot
from tests.conftest import RatServer, start_server
from tests.e2e.oidc_support import API_AUDIENCE, CLIENT_ID, CLIENT_SECRET, FakeIdp


@pytest.fixture(scope="module")
def oidc_server(pg_base: str, template_db: str, idp: FakeIdp,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[RatServer]:
    config = tmp_path_factory.mktemp("oidc-ui") / "rat.yaml"
    config.write_text(json.dumps({"plugins": {"rat-auth": {"enabled": True, "config": {
        "mode": "oidc", "issuer": idp.url, "audience": API_AUDIENCE,
        "jwks_url": f"{idp.url}/jwks", "roles_claim": "realm_access.roles",
        "client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "login_label": "Test IdP"}}}}))
    with ThreadPoolExecutor(1) as pool:  # asyncio cannot nest in Playwright's running loop
        server = pool.submit(start_server, pg_base, template_db, "local", None,
                             {"RAT_CONFIG": str(config)}).result()
    try:
        yield server
    finally:
        server.stop()


def test_log_in_with_the_identity_provider(browser: Browser, oidc_server: RatServer) -> None:
    context = browser.new_context(base_url=oidc_server.url)
    context.set_default_timeout(15_000)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto("/runs")
        expect(page).to_have_url(f"{oidc_server.url}/login?next=%2Fruns")
        screenshot(page, "oidc-login-page")
        page.get_by_role("link", name="Log in with Test IdP").click()
        expect(page).to_have_url(f"{oidc_server.url}/runs")
        expect(page.get_by_role("button", name="Log out")).to_be_visible()
        me = page.request.get("/api/v1/me").json()
        assert me["user_id"] == "erin"
        assert me["roles"] == ["analyst"]
        screenshot(page, "oidc-login")
        page.get_by_role("button", name="Log out").click()
        expect(page).to_have_url(f"{oidc_server.url}/login")
        assert page.request.get("/api/v1/me").status == 401
    finally:
        context.close()
    assert not errors, errors
