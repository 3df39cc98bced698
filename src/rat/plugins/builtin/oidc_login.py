"""rat-auth browser login: OIDC authorization code with PKCE (S256), product §15.

`begin` reads the issuer's discovery document and builds the authorization URL with a fresh
state, nonce and PKCE verifier (the web layer keeps them in a signed, short-lived cookie).
`finish` checks the state, exchanges the code at the token endpoint and validates the ID token
with the same JWKS validator as bearer JWTs (audience = the client id, nonce must match). The
session's principal comes from the access token when it is a JWT RAT accepts as a bearer token
for the same user (it carries the API audience and usually the roles), else from the ID token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import httpx
import msgspec

from rat.core.errors import Unauthenticated, Unavailable
from rat.plugins.host import PluginError
from rat.plugins.protocols import LoginFlow, Principal

if TYPE_CHECKING:
    from rat.plugins.builtin.auth import AuthConfig, OidcVerifier

log = logging.getLogger("rat.plugins.auth")
DISCOVERY_PATH = "/.well-known/openid-configuration"
DISCOVERY_TTL_SECONDS = 3600.0
HTTP_TIMEOUT_SECONDS = 10.0


class Endpoints(msgspec.Struct, kw_only=True):
    issuer: str
    authorization_endpoint: str
    token_endpoint: str


class TokenResponse(msgspec.Struct, kw_only=True):
    id_token: str = ""
    access_token: str = ""
    error: str = ""
    error_description: str = ""


def read_secret(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise PluginError(f"cannot read client_secret_file: {exc.strerror}") from None


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _with_query(url: str, params: dict[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def _refusal(what: str, error: str, description: str) -> Unauthenticated:
    detail = f" ({description[:200]})" if description else ""
    return Unauthenticated(f"the identity provider refused {what}: {error[:100]}{detail}")


class OidcLogin:
    """The `interactive` login of the rat-auth provider (see rat.plugins.protocols)."""

    def __init__(self, config: AuthConfig, verifier: OidcVerifier) -> None:
        self.config = config
        self.verifier = verifier
        self.label = config.login_label or urlsplit(config.issuer).netloc or config.issuer
        self._endpoints: Endpoints | None = None
        self._fetched_at = 0.0

    async def begin(self, redirect_uri: str, next_url: str) -> tuple[str, LoginFlow]:
        endpoints = await self.endpoints()
        flow = LoginFlow(state=secrets.token_urlsafe(32), nonce=secrets.token_urlsafe(32),
                         verifier=secrets.token_urlsafe(64), redirect_uri=redirect_uri,
                         next_url=next_url, started=time.time())
        url = _with_query(endpoints.authorization_endpoint, {
            "response_type": "code", "client_id": self.config.client_id,
            "redirect_uri": redirect_uri, "scope": self.config.scopes, "state": flow.state,
            "nonce": flow.nonce, "code_challenge": pkce_challenge(flow.verifier),
            "code_challenge_method": "S256"})
        return url, flow

    async def finish(self, flow: LoginFlow, params: Mapping[str, str]) -> Principal:
        if params.get("error"):
            raise _refusal("the login", params["error"], params.get("error_description", ""))
        if not hmac.compare_digest(params.get("state", ""), flow.state):
            raise Unauthenticated("the login state does not match; start the login again")
        code = params.get("code", "")
        if not code:
            raise Unauthenticated("the identity provider sent no authorization code")
        tokens = await self._exchange(flow, code)
        if not tokens.id_token:
            raise Unauthenticated("the identity provider returned no ID token")
        claims = await self.verifier.claims(tokens.id_token, audience=self.config.client_id)
        if not hmac.compare_digest(str(claims.get("nonce", "")), flow.nonce):
            raise Unauthenticated("the ID token's nonce does not match this login")
        user = self.verifier.to_principal(claims)
        return await self._api_principal(tokens.access_token, user) or user

    async def _api_principal(self, access_token: str, user: Principal) -> Principal | None:
        """The access token's principal if RAT accepts it as a bearer token for `user`."""
        if access_token.count(".") != 2:
            return None
        try:
            found = await self.verifier.principal(access_token)
        except Unauthenticated:
            return None
        return found if found.user_id == user.user_id else None

    async def endpoints(self) -> Endpoints:
        """The issuer's discovery document, cached for an hour."""
        fresh = time.monotonic() - self._fetched_at < DISCOVERY_TTL_SECONDS
        if self._endpoints is not None and fresh:
            return self._endpoints
        url = self.config.issuer.rstrip("/") + DISCOVERY_PATH
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as client:
                response = await client.get(url)
                response.raise_for_status()
            found = msgspec.json.decode(response.content, type=Endpoints)
        except (httpx.HTTPError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.warning("OIDC discovery at %s failed: %s", url, exc)
            raise Unavailable("the identity provider cannot be reached; try again later") \
                from None
        if found.issuer.rstrip("/") != self.config.issuer.rstrip("/"):
            log.warning("OIDC discovery issuer %r differs from %r", found.issuer,
                        self.config.issuer)
            raise Unavailable("the identity provider's discovery document names another issuer")
        self._endpoints, self._fetched_at = found, time.monotonic()
        return found

    async def _exchange(self, flow: LoginFlow, code: str) -> TokenResponse:
        """Trade the code (and the PKCE verifier) for tokens at the token endpoint."""
        endpoints = await self.endpoints()
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": flow.redirect_uri, "code_verifier": flow.verifier,
                "client_id": self.config.client_id}
        auth: Any = (self.config.client_id, self.config.client_secret) \
            if self.config.client_secret else None
        try:
            async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_SECONDS) as client:
                response = await client.post(endpoints.token_endpoint, data=form, auth=auth,
                                             headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            log.warning("OIDC token request failed: %s", exc)
            raise Unavailable("the identity provider's token endpoint cannot be reached") \
                from None
        if response.status_code >= 500:
            raise Unavailable("the identity provider's token endpoint failed; try again later")
        try:
            tokens = msgspec.json.decode(response.content, type=TokenResponse)
        except (msgspec.DecodeError, msgspec.ValidationError):
            tokens = TokenResponse(error=f"HTTP {response.status_code}, not a token response")
        if response.status_code != 200 or tokens.error:
            raise _refusal("the authorization code", tokens.error or str(response.status_code),
                           tokens.error_description)
        return tokens
