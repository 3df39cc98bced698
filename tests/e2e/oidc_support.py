"""A tiny OpenID Connect provider served by the test itself (for the browser-login tests).

Discovery, an authorize endpoint that approves at once (redirecting back with a code, or with
`error=access_denied` when told to deny), a token endpoint that checks the client secret, the
redirect URI and the PKCE S256 verifier and accepts each code once, and a JWKS of a locally
generated RSA key. It signs an ID token (audience = client id, with the nonce) and an access token
(audience = RAT's API audience, with realm roles).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

CLIENT_ID = "rat-ui"
CLIENT_SECRET = "idp-client-secret"
API_AUDIENCE = "rat"


class FakeIdp:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.user = "erin"
        self.roles = ["analyst"]
        self.deny = False
        self.wrong_nonce = False
        self.codes: dict[str, dict[str, str]] = {}
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests: list[dict[str, str]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.issuer = self.url  # what discovery and the tokens name
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.issuer, "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"]}

    def jwks(self) -> dict[str, Any]:
        jwk = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**jwk, "kid": "idp1", "alg": "RS256", "use": "sig"}]}

    def sign(self, aud: str, **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": aud, "iat": now, "exp": now + 300, **claims}
        return jwt.encode(payload, self.key, algorithm="RS256", headers={"kid": "idp1"})

    def authorize(self, query: dict[str, str]) -> str:
        """Where the provider sends the browser back to (the approval is automatic)."""
        self.authorize_requests.append(query)
        back = query["redirect_uri"]
        if self.deny:
            return back + "?" + urlencode({"error": "access_denied", "state": query["state"],
                                           "error_description": "the user said no"})
        code = secrets.token_urlsafe(16)
        self.codes[code] = {**query, "user": self.user}
        return back + "?" + urlencode({"code": code, "state": query["state"]})

    def token(self, form: dict[str, str], basic: str | None) -> tuple[int, dict[str, Any]]:
        self.token_requests.append(form)
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if basic != f"Basic {expected}":
            return 401, {"error": "invalid_client"}
        grant = self.codes.pop(form.get("code", ""), None)  # each code works once
        if grant is None or form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "code is invalid or used"}
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.decode().rstrip("=") != grant["code_challenge"] or \
                grant["code_challenge_method"] != "S256":
            return 400, {"error": "invalid_grant", "error_description": "PKCE check failed"}
        nonce = "not-" + grant["nonce"] if self.wrong_nonce else grant["nonce"]
        user = grant["user"]
        return 200, {
            "token_type": "Bearer", "expires_in": 300,
            "id_token": self.sign(CLIENT_ID, sub=user, nonce=nonce, email=f"{user}@example.test",
                                  name=user.title()),
            "access_token": self.sign(API_AUDIENCE, sub=user, email=f"{user}@example.test",
                                      name=user.title(),
                                      realm_access={"roles": list(self.roles)})}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        idp = self

        class Handler(BaseHTTPRequestHandler):
            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                if parts.path == "/.well-known/openid-configuration":
                    self._json(200, idp.discovery())
                elif parts.path == "/jwks":
                    self._json(200, idp.jwks())
                elif parts.path == "/authorize":
                    self.send_response(302)
                    self.send_header("Location", idp.authorize(query))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                else:
                    self._json(404, {"error": "not_found"})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                form = {k: v[0] for k, v in parse_qs(raw).items()}
                status, body = idp.token(form, self.headers.get("Authorization"))
                self._json(status, body)

            def log_message(self, *args: Any) -> None:
                return

        return Handler
