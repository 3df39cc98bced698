"""The JWKS cache refetches at most once per interval for unknown key ids, and fails closed."""

from __future__ import annotations

import pytest

from rat.core.errors import Unauthenticated, Unavailable
from rat.plugins.builtin.auth import AuthConfig, OidcVerifier
from tests.e2e.pro_support import AUDIENCE, ISSUER, Jwks


async def test_unknown_kid_refetch_is_rate_limited() -> None:
    jwks = Jwks()
    try:
        verifier = OidcVerifier(AuthConfig(mode="oidc", issuer=ISSUER, audience=AUDIENCE,
                                           jwks_url=jwks.url))
        assert (await verifier.principal(jwks.token("dave"))).user_id == "dave"
        assert jwks.fetches == 1
        for _ in range(3):
            with pytest.raises(Unauthenticated, match="unknown key"):
                await verifier.principal(jwks.token("dave", kid="rotated"))
        assert jwks.fetches == 1
        verifier.jwks.fetched_at -= 61
        with pytest.raises(Unauthenticated, match="unknown key"):
            await verifier.principal(jwks.token("dave", kid="rotated"))
        assert jwks.fetches == 2
        jwks.down = True
        assert (await verifier.principal(jwks.token("dave", alg="ES256"))).user_id == "dave"
        verifier.jwks.fetched_at -= 61
        with pytest.raises(Unavailable):
            await verifier.principal(jwks.token("dave", kid="rotated"))
    finally:
        jwks.close()
