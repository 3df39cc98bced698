"""Helpers for the Pro (auth + sharing) end-to-end tests: a JWKS the test serves, signed JWTs,
and the route table of the real app with concrete URLs for every access declaration."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from rat.web.access import Access, declared

ISSUER = "http://issuer.test/realms/rat"
AUDIENCE = "rat"


class Jwks:
    """Locally generated RSA and EC keys, served as a JWKS on a loopback port."""

    def __init__(self) -> None:
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.down = False
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps(jwks.document()).encode()
                self.send_response(503 if jwks.down else 200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}" if jwks.down else body)

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/jwks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def document(self) -> dict[str, Any]:
        rsa_jwk = RSAAlgorithm.to_jwk(self.rsa.public_key(), as_dict=True)
        ec_jwk = ECAlgorithm.to_jwk(self.ec.public_key(), as_dict=True)
        return {"keys": [{**rsa_jwk, "kid": "rsa1", "alg": "RS256", "use": "sig"},
                         {**ec_jwk, "kid": "ec1", "alg": "ES256", "use": "sig"}]}

    def token(self, sub: str, *, alg: str = "RS256", kid: str | None = None, aud: str = AUDIENCE,
              iss: str = ISSUER, exp_in: int = 300, key: Any = None, **claims: Any) -> str:
        now = int(time.time())
        payload = {"sub": sub, "iss": iss, "aud": aud, "iat": now, "exp": now + exp_in, **claims}
        signer = key or (self.rsa if alg == "RS256" else self.ec)
        return jwt.encode(payload, signer, algorithm=alg,
                          headers={"kid": kid or ("rsa1" if alg == "RS256" else "ec1")})

    def close(self) -> None:
        self.server.shutdown()


@dataclass
class Fixture:
    """Alice's resources, by resolver name, to fill path parameters."""

    pipeline: str
    run_id: str
    zone: str
    schedule_id: str
    grant_id: str
    values: dict[str, dict[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        p = {"ns": "default", "layer": "bronze", "name": self.pipeline}
        self.values = {
            "pipeline": p, "table": p, "run": {"run_id": self.run_id},
            "zone": {"ns": "default", "name": self.zone},
            "namespace": {"ns": "default", "name": "default"},
            "schedule": {"id": self.schedule_id, "schedule_id": self.schedule_id},
            "grant": {"grant_id": self.grant_id, "id": self.grant_id},
            "file": {"path": f"default/pipelines/bronze/{self.pipeline}/pipeline.sql"},
        }

    def body(self) -> dict[str, Any]:
        return {"namespace": "default", "layer": "bronze", "pipeline": self.pipeline,
                "name": self.pipeline, "resource_type": "pipeline",
                "resource_id": f"default.bronze.{self.pipeline}", "permission": "read",
                "grantee_id": "bob", "content": "SELECT 2 AS id", "to_user_id": "bob",
                "description": "changed", "sql": "SELECT 1", "cron": "@daily"}


_PARAM = re.compile(r"\{(\w+)(?::\w+)?\}")


def fill(path: str, decl: Access, fx: Fixture) -> str:
    values = fx.values.get(decl.resolver or "", {})

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in values:
            return values[name]
        if name.lower().endswith("id"):
            return str(uuid.uuid4())
        return "1" if name == "number" else "x1"

    return _PARAM.sub(sub, path)


def routes(app: Any) -> Iterator[tuple[str, str, Access | None]]:
    """(method, path template, declaration) for every route handler of the app."""
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            for method in sorted(set(handler.http_methods) - {"OPTIONS", "HEAD"}):
                yield method, route.path, declared(handler)


def checked_routes(app: Any) -> list[tuple[str, str, Access]]:
    """Routes the access matrix covers: everything but static files and the API docs."""
    out = []
    for method, path, decl in routes(app):
        if path.startswith(("/static", "/schema")):
            continue
        assert decl is not None, f"{method} {path} has no access declaration"
        out.append((method, path, decl))
    return out
