"""Pro edition over HTTP: tokens, OIDC JWTs, and sharing enforced on every route of the route table.

User A (alice) owns a pipeline, its run, table and files, and a landing zone. User B (bob) must get
403/404 on every guarded route (API and pages, generated from the app's route table so routes
added later are covered) and 401 without credentials; after alice shares read, bob reads and
still cannot write.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from rat.app import create_app
from rat.config import load_settings
from tests.conftest import ROOT, RatServer, start_server, unique, wait_run
from tests.e2e.pro_support import AUDIENCE, ISSUER, Fixture, Jwks, checked_routes, fill

PLUGINS = "rat-auth,rat-sharing,rat-audit,rat-namespaces"
GUARDED = ("R", "W", "A")


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    yield server
    server.close()


def _rat_yaml(path: Any, jwks_url: str) -> None:
    path.write_text(json.dumps({"plugins": {
        "rat-auth": {"enabled": True, "config": {
            "mode": "both", "issuer": ISSUER, "audience": AUDIENCE, "jwks_url": jwks_url,
            "jwks_refetch_seconds": 0, "roles_claim": "realm_access.roles"}},
        "rat-sharing": {"enabled": True}, "rat-audit": {"enabled": True},
        "rat-namespaces": {"enabled": True}, "rat-ghost": {"enabled": True}}}))


@pytest.fixture(scope="module")
def pro(pg_base: str, template_db: str, jwks: Jwks,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[RatServer]:
    config = tmp_path_factory.mktemp("pro") / "rat.yaml"
    _rat_yaml(config, jwks.url)
    server = start_server(pg_base, template_db, "local", None, {"RAT_CONFIG": str(config)})
    try:
        yield server
    finally:
        server.stop()


def cli_token(server: RatServer, user: str, *, admin: bool = False) -> str:
    args = [sys.executable, "-m", "rat", "tokens", "create", "--user", user]
    out = subprocess.run([*args, "--admin"] if admin else args, env=server.env(), cwd=ROOT,
                         capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


def client(server: RatServer, token: str | None = None, base: str = "/api/v1") -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=server.url + base, headers=headers, timeout=60,
                        follow_redirects=False)


@pytest.fixture(scope="module")
def users(pro: RatServer) -> dict[str, str]:
    admin = cli_token(pro, "root", admin=True)
    with client(pro, admin) as c:
        tokens = {u: c.post("/tokens", json={"name": u, "user_id": u}).json()["token"]
                  for u in ("alice", "bob")}
        grant = c.post("/sharing", json={"resource_type": "namespace", "resource_id": "default",
                                         "grantee_id": "alice", "permission": "write"})
        assert grant.status_code == 201, grant.text
    return {"admin": admin, **tokens}


async def _insert_rows(dsn: str, pipeline_id: str, zone: str) -> tuple[str, str]:
    conn = await asyncpg.connect(dsn)
    try:
        zone_id, schedule_id = uuid.uuid4(), uuid.uuid4()
        await conn.execute("INSERT INTO landing_zones (id, namespace, name, owner) "
                           "VALUES ($1, 'default', $2, 'alice')", zone_id, zone)
        await conn.execute("INSERT INTO schedules (id, pipeline_id, cron_expr, enabled) "
                           "VALUES ($1, $2, '@daily', false)", schedule_id, uuid.UUID(pipeline_id))
        return str(zone_id), str(schedule_id)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def alice_world(pro: RatServer, users: dict[str, str]) -> Fixture:
    name = unique("secret")
    with client(pro, users["alice"]) as c:
        created = c.post("/pipelines", json={"namespace": "default", "layer": "bronze",
                                             "name": name, "source": "SELECT 42 AS answer"})
        assert created.status_code == 201, created.text
        pipeline = c.get(f"/pipelines/default/bronze/{name}").json()
        assert pipeline["owner"] == "alice"
        run = c.post("/runs", json={"namespace": "default", "layer": "bronze", "pipeline": name})
        assert run.status_code == 202, run.text
        assert wait_run(c, run.json()["run_id"])["status"] == "success"
        grant = c.post("/sharing", json={"resource_type": "pipeline", "permission": "read",
                                         "resource_id": f"default.bronze.{name}",
                                         "grantee_id": "carol"})
        assert grant.status_code == 201, grant.text
    zone = unique("zone")
    _zone_id, schedule_id = asyncio.run(_insert_rows(pro.dsn, pipeline["id"], zone))
    return Fixture(pipeline=name, run_id=run.json()["run_id"], zone=zone,
                   schedule_id=schedule_id, grant_id=grant.json()["id"])


@pytest.fixture(scope="module")
def route_table(tmp_path_factory: pytest.TempPathFactory, jwks: Jwks) -> list[Any]:
    """The real app's routes, built in-process with the same plugins (never started)."""
    root = tmp_path_factory.mktemp("routes")
    _rat_yaml(root / "rat.yaml", jwks.url)
    env = {"RAT_DATA_DIR": str(root), "RAT_CONFIG": str(root / "rat.yaml"), "RAT_PLUGINS": PLUGINS}
    before = os.environ.get("RAT_RUNNER_PLUGINS")
    app = create_app(load_settings(env))
    if before is None:
        os.environ.pop("RAT_RUNNER_PLUGINS", None)
    return checked_routes(app)


def send(c: httpx.Client, method: str, url: str, fx: Fixture, decl: Any,
         csrf: str | None = None) -> httpx.Response:
    headers = {"x-csrftoken": csrf} if csrf else {}
    if decl.resolver == "query:resource":
        return c.request(method, url, params={"resource_type": "pipeline",
                                              "resource_id": f"default.bronze.{fx.pipeline}"})
    if decl.resolver == "deferred":
        path = fx.values["file"]["path"]
        return c.request(method, url, headers=headers, data={"path": path},
                         files={"file": ("pipeline.sql", b"SELECT 3")})
    if method in ("GET", "DELETE"):
        return c.request(method, url, headers=headers)
    if not url.startswith("/api/"):
        return c.request(method, url, headers=headers, data=fx.body())
    return c.request(method, url, headers=headers, json=fx.body())


def _csrf(server: RatServer, c: httpx.Client) -> str:
    c.get(server.url + "/login")
    return c.cookies.get("csrftoken") or ""


def test_unauthenticated_requests_get_401(pro: RatServer, alice_world: Fixture,
                                          route_table: list[Any]) -> None:
    with client(pro, base="") as c:
        csrf = _csrf(pro, c)
        for method, path, decl in route_table:
            if decl.mark == "public":
                continue
            resp = send(c, method, fill(path, decl, alice_world), alice_world, decl, csrf)
            if path.startswith("/api/"):
                assert resp.status_code == 401, (method, path, resp.text)
                assert resp.headers["www-authenticate"] == "Bearer"
                assert resp.json()["error"]["type"] == "AUTHENTICATION"
            else:
                assert resp.status_code in (303, 401), (method, path, resp.status_code)
        page = c.get("/pipelines", headers={"Accept": "text/html"})
        assert page.status_code == 303
        assert page.headers["location"] == "/login?next=%2Fpipelines"


def test_other_user_cannot_touch_unshared_resources(pro: RatServer, users: dict[str, str],
                                                    alice_world: Fixture,
                                                    route_table: list[Any]) -> None:
    covered = 0
    with client(pro, users["bob"], base="") as c:
        csrf = _csrf(pro, c)
        for method, path, decl in route_table:
            if decl.mark not in GUARDED:
                continue
            resp = send(c, method, fill(path, decl, alice_world), alice_world, decl, csrf)
            assert resp.status_code in (403, 404), (method, path, resp.status_code, resp.text)
            covered += 1
    assert covered >= 10
    _assert_lists_hide(pro, users["bob"], alice_world)
    with client(pro, users["alice"]) as c:
        assert c.get(f"/pipelines/default/bronze/{alice_world.pipeline}").status_code == 200


def _assert_lists_hide(pro: RatServer, token: str, fx: Fixture) -> None:
    with client(pro, token) as c:
        assert c.get("/pipelines", params={"search": fx.pipeline}).json()["total"] == 0
        assert c.get("/runs", params={"pipeline": fx.pipeline}).json()["total"] == 0
        assert c.get("/tables", params={"search": fx.pipeline}).json()["total"] == 0
        files = c.get("/files", params={"prefix": "default/"}).json()["files"]
        assert not [f for f in files if fx.pipeline in f["path"]]
        query = c.post("/query", json={"sql": f"SELECT * FROM bronze.{fx.pipeline}"})
        assert query.status_code in (400, 403, 404)
    with client(pro, token, base="") as c:
        page = c.get("/pipelines", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert fx.pipeline not in page.text


def test_shared_read_allows_reading_not_writing(pro: RatServer, users: dict[str, str],
                                               alice_world: Fixture,
                                               route_table: list[Any]) -> None:
    fx = alice_world
    with client(pro, users["alice"]) as c:
        share = c.post("/sharing", json={"resource_type": "pipeline", "permission": "read",
                                         "resource_id": f"default.bronze.{fx.pipeline}",
                                         "granted_to": "bob"})
        assert share.status_code == 201, share.text
        assert share.json()["granted_to"] == share.json()["grantee_id"] == "bob"
    try:
        with client(pro, users["bob"]) as c:
            assert c.get(f"/pipelines/default/bronze/{fx.pipeline}").status_code == 200
            assert c.get(f"/runs/{fx.run_id}").json()["status"] == "success"
            assert c.get(f"/runs/{fx.run_id}/logs").status_code == 200
            assert c.get(f"/files/{fx.values['file']['path']}").json()["content"] == \
                "SELECT 42 AS answer"
            assert c.get("/pipelines", params={"search": fx.pipeline}).json()["total"] == 1
            rows = c.post("/query", json={"sql": f"SELECT answer FROM bronze.{fx.pipeline}"})
            assert rows.json()["rows"] == [{"answer": 42}]
        _assert_writes_forbidden(pro, users["bob"], fx, route_table)
    finally:
        with client(pro, users["alice"]) as c:
            assert c.delete(f"/sharing/{share.json()['id']}").status_code == 204
    with client(pro, users["bob"]) as c:
        assert c.get(f"/pipelines/default/bronze/{fx.pipeline}").status_code == 404


def _assert_writes_forbidden(pro: RatServer, token: str, fx: Fixture,
                             route_table: list[Any]) -> None:
    inherits = ("pipeline", "table", "run", "file", "body:pipeline", "body:resource",
                "query:resource", "schedule", "deferred")
    with client(pro, token, base="") as c:
        csrf = _csrf(pro, c)
        for method, path, decl in route_table:
            if decl.mark not in ("W", "A"):
                continue
            resp = send(c, method, fill(path, decl, fx), fx, decl, csrf)
            expected = (403,) if decl.resolver in inherits else (403, 404)
            assert resp.status_code in expected, (method, path, resp.status_code, resp.text)


def test_tokens_me_and_revocation(pro: RatServer, users: dict[str, str]) -> None:
    with client(pro, users["alice"]) as c:
        assert c.get("/me").json() == {"user_id": "alice", "email": "", "display_name": "alice",
                                       "roles": []}
        made = c.post("/tokens", json={"name": "laptop"})
        assert made.status_code == 201
        token = made.json()["token"]
        assert token.startswith("rat_")
        assert len(token) == 44
        assert made.json()["prefix"] == token[:8]
        assert c.post("/tokens", json={"name": "x", "roles": ["admin"]}).status_code == 403
        assert c.post("/tokens", json={"name": "x", "user_id": "bob"}).status_code == 403
        listed = c.get("/tokens").json()
        assert {t["user_id"] for t in listed["tokens"]} == {"alice"}
        assert "token" not in listed["tokens"][0]
        assert c.get("/audit").status_code == 403
    with client(pro, token) as c:
        assert c.get("/me").json()["user_id"] == "alice"
    with client(pro, users["alice"]) as c:
        assert c.delete(f"/tokens/{made.json()['id']}").status_code == 204
    with client(pro, token) as c:
        resp = c.get("/me")
        assert resp.status_code == 401
        assert "revoked" in resp.json()["error"]["message"]


def test_audit_records_mutations(pro: RatServer, users: dict[str, str],
                                 alice_world: Fixture) -> None:
    with client(pro, users["admin"]) as c:
        page = c.get("/audit", params={"user_id": "alice", "action": "post", "limit": 200})
        assert page.status_code == 200, page.text
        entries = page.json()["entries"]
        create = [e for e in entries if e["resource"] == "/api/v1/pipelines"
                  and e["detail"]["body"].get("name") == alice_world.pipeline]
        assert create
        assert create[0]["ip"] == "127.0.0.1"
        assert create[0]["detail"]["status"] == 201
        assert create[0]["detail"]["body"]["source"] == "…"
        assert c.get("/audit", params={"action": "get"}).status_code == 400
        assert c.get("/audit", params={"since": "yesterday"}).status_code == 400


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_oidc_jwt_is_accepted(pro: RatServer, jwks: Jwks, alg: str) -> None:
    token = jwks.token("carol", alg=alg, email="carol@example.com", name="Carol",
                       realm_access={"roles": ["analyst"]})
    with client(pro, token) as c:
        me = c.get("/me")
        assert me.status_code == 200, me.text
        assert me.json()["user_id"] == "carol"
        assert me.json()["email"] == "carol@example.com"
        assert me.json()["roles"] == ["analyst"]


@pytest.mark.parametrize(("make", "message"), [
    (lambda j: j.token("carol", exp_in=-120), "expired"),
    (lambda j: j.token("carol", aud="someone-else"), "audience"),
    (lambda j: j.token("carol", iss="http://evil.test"), "issuer"),
    (lambda j: j.token("carol", kid="nope"), "unknown key"),
    (lambda j: j.token("carol", key=j.other), "invalid token"),
    (lambda j: "not-a-token", "malformed"),
    (lambda j: "a.b.c", "malformed"),
    (lambda j: "rat_tooshort", "malformed"),
    (lambda j: "rat_" + "A" * 40, "invalid, expired or revoked"),
])
def test_bad_credentials_get_clear_401(pro: RatServer, jwks: Jwks, make: Any,
                                       message: str) -> None:
    with client(pro, make(jwks)) as c:
        resp = c.get("/pipelines")
        assert resp.status_code == 401, resp.text
        assert message in resp.json()["error"]["message"]
    with client(pro) as c:
        resp = c.get("/pipelines", headers={"Authorization": "Basic abc"})
        assert resp.status_code == 401


def test_expired_within_skew_is_accepted(pro: RatServer, jwks: Jwks) -> None:
    with client(pro, jwks.token("carol", exp_in=-30)) as c:
        assert c.get("/me").status_code == 200


def test_jwks_unreachable_fails_closed(pro: RatServer, jwks: Jwks) -> None:
    jwks.down = True
    try:
        with client(pro, jwks.token("carol", kid="rotated")) as c:
            resp = c.get("/me")
            assert resp.status_code == 503
            assert resp.json()["error"]["code"] == "UNAVAILABLE"
    finally:
        jwks.down = False
    assert httpx.get(f"{pro.url}/health/ready").status_code == 200


def test_features_and_unknown_plugin(pro: RatServer, users: dict[str, str]) -> None:
    with client(pro) as c:
        features = c.get("/features").json()
    assert features["edition"] == "pro"
    assert features["multi_user"] is True
    assert features["namespaces"] is True
    assert features["plugins"]["rat-ghost"]["enabled"] is False
    with client(pro, users["bob"]) as c:
        ghost = c.get("/plugins/rat-ghost").json()
        assert ghost["status"] == "error"
        assert "not found" in ghost["error"]
        auth = c.get("/plugins/rat-auth").json()
        assert auth["status"] == "enabled"
        assert auth["config"]["jwks_url"].endswith("/jwks")


def test_ui_login_with_token_and_jwt(pro: RatServer, users: dict[str, str], jwks: Jwks) -> None:
    for credential in (users["alice"], jwks.token("carol")):
        with httpx.Client(base_url=pro.url, follow_redirects=False, timeout=30) as c:
            form = c.get("/login?next=/runs")
            assert form.status_code == 200
            assert 'name="token"' in form.text
            csrf = c.cookies.get("csrftoken")
            bad = c.post("/login", data={"token": "rat_wrong", "next": "/runs",
                                         "_csrf_token": csrf})
            assert bad.status_code == 401
            assert "malformed" in bad.text
            ok = c.post("/login", data={"token": credential, "next": "/runs",
                                        "_csrf_token": csrf})
            assert ok.status_code == 303
            assert ok.headers["location"] == "/runs"
            cookie = ok.headers["set-cookie"]
            assert "HttpOnly" in cookie
            assert "SameSite=Lax" in cookie
            assert c.get("/runs", headers={"Accept": "text/html"}).status_code == 200
            assert c.get("/api/v1/me").json()["user_id"] in ("alice", "carol")
            out = c.post("/logout", data={"_csrf_token": csrf})
            assert out.status_code == 303
            c.cookies.delete("rat_session")
            assert c.get("/runs", headers={"Accept": "text/html"}).status_code == 303
        with httpx.Client(base_url=pro.url, follow_redirects=False, timeout=30) as c:
            c.get("/login")
            evil = c.post("/login", data={"token": credential, "next": "//evil.test/x",
                                          "_csrf_token": c.cookies.get("csrftoken")})
            assert evil.headers["location"] == "/"
