"""rat-auth: API tokens and OIDC bearer JWTs (product §15).

Tokens are `rat_` + 40 base62 characters; only the SHA-256 is stored. JWTs (RS256/ES256) are
checked against the issuer's JWKS, cached and refetched at most once per 60 s for an unknown
`kid`; 60 s clock skew. JWKS unreachable with no cached key for the token -> 503 (fail closed).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import string
import time
import uuid
from datetime import datetime
from typing import Any, Literal

import httpx
import msgspec

from rat.core.errors import Invalid, NotFound, Unauthenticated, Unavailable
from rat.db.database import Database
from rat.db.queries import load_queries
from rat.pipelines.service import check_page
from rat.plugins.builtin.oidc_login import OidcLogin, read_secret
from rat.plugins.host import PluginError
from rat.plugins.protocols import Principal

log = logging.getLogger("rat.plugins.auth")
Q = load_queries("rat.plugins.builtin", "auth.sql")
TOKEN_PREFIX = "rat_"  # noqa: S105 - a public prefix, not a secret
TOKEN_CHARS = string.ascii_letters + string.digits
TOKEN_LENGTH = 40
ALGORITHMS = ("RS256", "ES256")
SESSION_CHECK_SECONDS = 30.0


class AuthConfig(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    mode: Literal["tokens", "oidc", "both"] = "tokens"
    issuer: str = ""
    audience: str = ""
    jwks_url: str = ""
    algorithms: list[str] = msgspec.field(default_factory=lambda: list(ALGORITHMS))
    user_claim: str = "sub"
    email_claim: str = "email"
    name_claim: str = "name"
    roles_claim: str = "roles"
    leeway_seconds: int = 60
    jwks_refetch_seconds: float = 60.0
    # Browser login (authorization code + PKCE) at the issuer; on when client_id is set.
    client_id: str = ""
    client_secret: str = ""
    client_secret_file: str = ""
    scopes: str = "openid email profile"
    login_label: str = ""

    @property
    def oidc(self) -> bool:
        return self.mode in ("oidc", "both")

    @property
    def tokens(self) -> bool:
        return self.mode in ("tokens", "both")


class ApiToken(msgspec.Struct, kw_only=True):
    id: uuid.UUID
    name: str
    user_id: str
    prefix: str
    roles: list[str]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class NewToken(ApiToken, kw_only=True):
    token: str


class TokenPage(msgspec.Struct, kw_only=True):
    tokens: list[ApiToken]
    total: int


def new_token() -> str:
    return TOKEN_PREFIX + "".join(secrets.choice(TOKEN_CHARS) for _ in range(TOKEN_LENGTH))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def well_formed(token: str) -> bool:
    body = token.removeprefix(TOKEN_PREFIX)
    return token.startswith(TOKEN_PREFIX) and len(body) == TOKEN_LENGTH and \
        all(c in TOKEN_CHARS for c in body)


class TokenStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, *, user_id: str, name: str, roles: list[str],
                     expires_at: datetime | None) -> NewToken:
        if not name or len(name) > 100:
            raise Invalid("name must be 1 to 100 characters")
        if not user_id or len(user_id) > 256:
            raise Invalid("user_id must be 1 to 256 characters")
        token = new_token()
        row = await self.db.one(Q["insert_token"], uuid.uuid4(), name, user_id, token[:8],
                                token_hash(token), roles, expires_at)
        assert row is not None  # noqa: S101
        return NewToken(**row, token=token)

    async def principal(self, token: str) -> Principal:
        if not well_formed(token):
            raise Unauthenticated("malformed API token")
        row = await self.db.one(Q["token_by_hash"], token_hash(token))
        if row is None:
            raise Unauthenticated("invalid, expired or revoked API token")
        await self.db.exec(Q["touch_token"], row["id"])
        return Principal(user_id=row["user_id"], display_name=row["user_id"],
                         roles=tuple(row["roles"] or ()), token_id=str(row["id"]))

    async def valid(self, token_id: str) -> bool:
        return bool(await self.db.val(Q["token_valid"], uuid.UUID(token_id)))

    async def list(self, user_id: str | None, limit: int, offset: int) -> TokenPage:
        check_page(limit, offset)
        rows = await self.db.many(Q["list_tokens"], user_id, limit, offset)
        total = int(rows[0]["total"]) if rows else int(
            await self.db.val(Q["count_tokens"], user_id))
        return TokenPage(tokens=[msgspec.convert({k: v for k, v in r.items() if k != "total"},
                                                 ApiToken, from_attributes=True) for r in rows],
                         total=total)

    async def revoke(self, token_id: uuid.UUID, user_id: str | None) -> None:
        if not await self.db.execrows(Q["revoke_token"], token_id, user_id):
            raise NotFound("token not found")


class Jwks:
    """The issuer's signing keys by `kid`, refetched at most once per interval."""

    def __init__(self, url: str, refetch_seconds: float) -> None:
        self.url = url
        self.refetch_seconds = refetch_seconds
        self.keys: dict[str, Any] = {}
        self.fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> Any:
        found = self._pick(kid)
        if found is not None:
            return found
        async with self._lock:
            if time.monotonic() - self.fetched_at >= self.refetch_seconds or not self.keys:
                await self._fetch()
        found = self._pick(kid)
        if found is None:
            raise Unauthenticated("token signed with an unknown key")
        return found

    def _pick(self, kid: str | None) -> Any:
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        return self.keys.get(kid) if kid is not None else None

    async def _fetch(self) -> None:
        import jwt

        self.fetched_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                document = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("JWKS fetch from %s failed: %s", self.url, exc)
            raise Unavailable("identity provider keys are unreachable") from None
        keys: dict[str, Any] = {}
        for jwk in document.get("keys", []) if isinstance(document, dict) else []:
            try:
                keys[str(jwk.get("kid", ""))] = jwt.PyJWK(jwk).key
            except (jwt.PyJWKError, jwt.InvalidKeyError, TypeError, ValueError) as exc:
                log.warning("ignoring an unusable JWKS key: %s", exc)
        self.keys = keys


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (`realm_access.roles`)."""
    value: Any = claims
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class OidcVerifier:
    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self.jwks = Jwks(config.jwks_url, config.jwks_refetch_seconds)

    async def principal(self, token: str) -> Principal:
        return self.to_principal(await self.claims(token))

    async def claims(self, token: str, audience: str | None = None) -> dict[str, Any]:
        """The verified claims of a JWT from the issuer (audience: the configured one)."""
        import jwt

        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise Unauthenticated("malformed bearer token") from None
        alg = header.get("alg")
        if alg not in self.config.algorithms:
            raise Unauthenticated(f"token algorithm {alg!r} is not accepted")
        key = await self.jwks.key(header.get("kid"))
        return self._decode(token, key, str(alg), audience or self.config.audience)

    def _decode(self, token: str, key: Any, alg: str, audience: str) -> dict[str, Any]:
        import jwt

        c = self.config
        try:
            decoded: dict[str, Any] = jwt.decode(
                token, key=key, algorithms=[alg], audience=audience, issuer=c.issuer,
                leeway=c.leeway_seconds, options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token has expired") from None
        except jwt.InvalidAudienceError:
            raise Unauthenticated("token audience is not accepted") from None
        except jwt.InvalidIssuerError:
            raise Unauthenticated("token issuer is not accepted") from None
        except jwt.ImmatureSignatureError:
            raise Unauthenticated("token is not valid yet") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated(f"invalid token: {exc}") from None
        return decoded

    def to_principal(self, claims: dict[str, Any]) -> Principal:
        c = self.config
        user = claim(claims, c.user_claim)
        if not user:
            raise Unauthenticated(f"token has no {c.user_claim!r} claim")
        roles = claim(claims, c.roles_claim) or []
        if isinstance(roles, str):
            roles = roles.replace(",", " ").split()
        return Principal(user_id=str(user), email=str(claim(claims, c.email_claim) or ""),
                         display_name=str(claim(claims, c.name_claim) or user),
                         roles=tuple(str(r) for r in roles if isinstance(r, str)))


class AuthProvider:
    """The `auth` slot: API tokens and/or OIDC JWTs from `Authorization: Bearer`."""

    def __init__(self, config: AuthConfig) -> None:
        self.config = config
        self.tokens: TokenStore | None = None
        self.oidc = OidcVerifier(config) if config.oidc else None
        self.interactive = OidcLogin(config, self.oidc) \
            if self.oidc is not None and config.client_id else None
        self._session_ok: dict[str, float] = {}

    async def start(self, runtime: Any) -> None:
        self.tokens = TokenStore(runtime.db)

    async def authenticate(self, request: Any) -> Principal | None:
        header = request.headers.get("authorization") or ""
        token = header.partition(" ")[2].strip()
        if not token:
            return None
        return await self.verify(token)

    async def verify(self, token: str) -> Principal:
        """A principal for an API token or a JWT; 401 for anything else."""
        if token.startswith(TOKEN_PREFIX) and self.config.tokens and self.tokens is not None:
            return await self.tokens.principal(token)
        if token.count(".") == 2 and self.oidc is not None:
            return await self.oidc.principal(token)
        raise Unauthenticated("malformed bearer token")

    async def validate_session(self, principal: Principal) -> bool:
        """A session started with an API token ends when the token is revoked."""
        if principal.token_id is None or self.tokens is None:
            return True
        checked = self._session_ok.get(principal.token_id, 0.0)
        if time.monotonic() - checked < SESSION_CHECK_SECONDS:
            return True
        if not await self.tokens.valid(principal.token_id):
            self._session_ok.pop(principal.token_id, None)
            return False
        self._session_ok[principal.token_id] = time.monotonic()
        return True


class AuthPlugin:
    name = "rat-auth"
    version = "1"
    slots = ("auth",)
    config_type = AuthConfig

    def __init__(self) -> None:
        self.provider: AuthProvider | None = None

    def activate(self, ctx: Any) -> None:
        config: AuthConfig = ctx.config
        if config.oidc and not (config.issuer and config.audience and config.jwks_url):
            raise PluginError("mode oidc needs issuer, audience and jwks_url")
        if config.client_id and not config.oidc:
            raise PluginError("client_id (browser login) needs mode oidc or both")
        if config.client_secret_file:
            config.client_secret = read_secret(config.client_secret_file)
        bad = [a for a in config.algorithms if a not in ALGORITHMS]
        if bad:
            raise PluginError(f"algorithms must be among {', '.join(ALGORITHMS)}, not {bad}")
        self.provider = AuthProvider(config)
        ctx.provide("auth", self.provider)
        ctx.add_capability("auth")
        ctx.add_capability("tokens" if config.tokens else "oidc")
        if config.oidc:
            ctx.add_capability("oidc")
        if self.provider.interactive is not None:
            ctx.add_capability("oidc_login")
        ctx.on_start(self.provider.start)


plugin = AuthPlugin
