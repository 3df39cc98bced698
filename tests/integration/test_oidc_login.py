"""The OIDC browser-login building blocks without a RAT server: PKCE and provider failures."""

from __future__ import annotations

import socket

import pytest

from rat.core.errors import Unauthenticated, Unavailable
from rat.plugins.builtin.auth import AuthConfig, OidcVerifier
from rat.plugins.builtin.oidc_login import OidcLogin, pkce_challenge
from tests.e2e.oidc_support import API_AUDIENCE, CLIENT_ID, FakeIdp


def test_pkce_s256_matches_rfc_7636() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def _login(issuer: str) -> OidcLogin:
    config = AuthConfig(mode="oidc", issuer=issuer, audience=API_AUDIENCE,
                        jwks_url=f"{issuer}/jwks", client_id=CLIENT_ID)
    return OidcLogin(config, OidcVerifier(config))


async def test_unreachable_provider_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(Unavailable, match="cannot be reached"):
        await _login(f"http://127.0.0.1:{port}").begin("http://rat/cb", "/")


async def test_discovery_must_name_the_configured_issuer() -> None:
    idp = FakeIdp()
    idp.issuer = "https://elsewhere.test"
    try:
        with pytest.raises(Unavailable, match="another issuer"):
            await _login(idp.url).begin("http://rat/cb", "/")
    finally:
        idp.close()


async def test_wrong_client_secret_is_a_clear_refusal() -> None:
    idp = FakeIdp()
    try:
        login = _login(idp.url)
        url, flow = await login.begin("http://rat/cb", "/")
        assert url.startswith(f"{idp.url}/authorize?")
        with pytest.raises(Unauthenticated, match="invalid_client"):
            await login.finish(flow, {"state": flow.state, "code": "whatever"})
    finally:
        idp.close()
