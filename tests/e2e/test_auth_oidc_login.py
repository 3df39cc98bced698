"""UI login with OIDC authorization code + PKCE against a fake identity provider, over real HTTP.

A real `rat serve` with rat-auth (mode both, a client id and secret) and the provider in
tests/e2e/oidc_support.py. The happy path ends with the same session cookie as the token form;
a provider error, a tampered state, a replayed code or callback, a wrong nonce and a forged flow
cookie each end on the login page with a clear message (never a 500) and without a session.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.conftest import RatServer, start_server
from tests.e2e.oidc_support import API_AUDIENCE, CLIENT_ID, CLIENT_SECRET, FakeIdp

FLOW_COOKIE = "rat_login_flow"


@pytest.fixture(scope="module")
def rat(pg_base: str, template_db: str, idp: FakeIdp,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[RatServer]:
    root = tmp_path_factory.mktemp("oidc")
    secret = root / "client_secret"
    secret.write_text(CLIENT_SECRET + "\n")
    config = root / "rat.yaml"
    config.write_text(json.dumps({"plugins": {"rat-auth": {"enabled": True, "config": {
        "mode": "both", "issuer": idp.url, "audience": API_AUDIENCE,
        "jwks_url": f"{idp.url}/jwks", "roles_claim": "realm_access.roles",
        "client_id": CLIENT_ID, "client_secret_file": str(secret),
        "login_label": "Test IdP"}}}}))
    server = start_server(pg_base, template_db, "local", None, {"RAT_CONFIG": str(config)})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _reset(idp: FakeIdp) -> Iterator[None]:
    yield
    idp.deny = idp.wrong_nonce = False
    idp.user = "erin"


def _start(rat: RatServer, next_url: str = "/runs") -> tuple[str, str]:
    """Begin a login without following redirects: (the provider's callback URL, flow cookie)."""
    start = httpx.get(f"{rat.url}/login/oidc", params={"next": next_url})
    assert start.status_code == 303, start.text
    flow = start.cookies[FLOW_COOKIE]
    back = httpx.get(start.headers["location"])
    assert back.status_code == 302
    return back.headers["location"], flow


def _callback(url: str, flow: str | None) -> httpx.Response:
    headers = {"Cookie": f"{FLOW_COOKIE}={flow}"} if flow else {}
    return httpx.get(url, headers=headers)


def _me(rat: RatServer, response: httpx.Response) -> httpx.Response:
    session = response.cookies.get("rat_session")
    headers = {"Cookie": f"rat_session={session}"} if session else {}
    return httpx.get(f"{rat.url}/api/v1/me", headers=headers)


def test_login_page_offers_the_provider(rat: RatServer) -> None:
    page = httpx.get(f"{rat.url}/login", params={"next": "/runs"})
    assert page.status_code == 200
    assert "Log in with Test IdP" in page.text
    assert 'href="/login/oidc?next=/runs"' in page.text
    assert 'name="token"' in page.text  # the token form stays available
    features = httpx.get(f"{rat.url}/api/v1/features").json()
    assert "oidc_login" in features["capabilities"]


def test_code_flow_with_pkce_logs_in(rat: RatServer, idp: FakeIdp) -> None:
    with httpx.Client(base_url=rat.url, follow_redirects=True, timeout=30) as c:
        landed = c.get("/login/oidc", params={"next": "/runs"},
                       headers={"Accept": "text/html"})
        assert landed.status_code == 200, landed.text
        assert urlsplit(str(landed.url)).path == "/runs"
        assert '<span class="user-name" title="erin@example.test">Erin</span>' in landed.text
        me = c.get("/api/v1/me").json()
        assert me == {"user_id": "erin", "email": "erin@example.test", "display_name": "Erin",
                      "roles": ["analyst"]}
        assert FLOW_COOKIE not in c.cookies
    asked = idp.authorize_requests[-1]
    assert asked["response_type"] == "code"
    assert asked["client_id"] == CLIENT_ID
    assert asked["redirect_uri"] == f"{rat.url}/login/oidc/callback"
    assert asked["code_challenge_method"] == "S256"
    assert len(asked["code_challenge"]) == 43
    assert asked["state"]
    assert asked["nonce"]
    assert "openid" in asked["scope"].split()
    sent = idp.token_requests[-1]
    assert sent["grant_type"] == "authorization_code"
    assert 43 <= len(sent["code_verifier"]) <= 128


def test_session_cookie_matches_the_token_form(rat: RatServer) -> None:
    url, flow = _start(rat, "/pipelines")
    done = _callback(url, flow)
    assert done.status_code == 303
    assert done.headers["location"] == "/pipelines"
    cookies = done.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("rat_session="))
    assert "HttpOnly" in session
    assert "SameSite=Lax" in session
    cleared = next(c for c in cookies if c.startswith(f"{FLOW_COOKIE}="))
    assert "Max-Age=0" in cleared
    assert _me(rat, done).json()["user_id"] == "erin"


def test_provider_error_is_shown(rat: RatServer, idp: FakeIdp) -> None:
    idp.deny = True
    url, flow = _start(rat)
    page = _callback(url, flow)
    assert page.status_code == 401
    assert "access_denied" in page.text
    assert "the user said no" in page.text
    assert "Log in with Test IdP" in page.text
    assert _me(rat, page).status_code == 401


def test_tampered_state_is_refused(rat: RatServer, idp: FakeIdp) -> None:
    url, flow = _start(rat)
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    forged = f"{parts.scheme}://{parts.netloc}{parts.path}?" + urlencode(
        {**query, "state": "attacker-state"})
    page = _callback(forged, flow)
    assert page.status_code == 401
    assert "state does not match" in page.text
    assert "rat_session" not in page.cookies
    assert query["code"] in idp.codes  # refused before the code was spent


def test_replayed_code_and_callback_are_refused(rat: RatServer) -> None:
    url, flow = _start(rat)
    assert _callback(url, flow).status_code == 303
    replay = _callback(url, flow)  # same code, same flow cookie: the provider says no
    assert replay.status_code == 401
    assert "invalid_grant" in replay.text
    again = _callback(url, None)  # the browser's flow cookie was cleared on success
    assert again.status_code == 401
    assert "expired or was already used" in again.text


def test_wrong_nonce_is_refused(rat: RatServer, idp: FakeIdp) -> None:
    idp.wrong_nonce = True
    url, flow = _start(rat)
    page = _callback(url, flow)
    assert page.status_code == 401
    assert "nonce does not match" in page.text
    assert "rat_session" not in page.cookies


def test_forged_flow_cookie_is_refused(rat: RatServer) -> None:
    url, flow = _start(rat)
    payload, _, mac = flow.partition(".")
    page = _callback(url, payload + "." + mac[::-1])
    assert page.status_code == 401
    assert "expired or was already used" in page.text
    assert "rat_session" not in page.cookies
