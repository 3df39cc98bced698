"""Pro: a pipeline runs with its owner's rights. Bob's pipelines cannot read Alice's table by
ref(), by raw path, from Python or from a quality test, in a preview or in a run (0 leaks)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RatServer, start_server, unique, wait_run
from tests.e2e.pro_support import Jwks
from tests.e2e.test_pro_access import _rat_yaml, cli_token, client
from tests.security.hostile import ESCAPE

SECRET = 314159


@pytest.fixture(scope="module")
def jwks() -> Iterator[Jwks]:
    server = Jwks()
    yield server
    server.close()


@pytest.fixture(scope="module")
def pro_box(pg_base: str, template_db: str, jwks: Jwks,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[RatServer]:
    config = tmp_path_factory.mktemp("pro") / "rat.yaml"
    _rat_yaml(config, jwks.url)
    server = start_server(pg_base, template_db, "local", None, {"RAT_CONFIG": str(config)})
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def world(pro_box: RatServer) -> dict[str, str]:
    admin = cli_token(pro_box, "root", admin=True)
    with client(pro_box, admin) as c:
        tokens = {u: c.post("/tokens", json={"name": u, "user_id": u}).json()["token"]
                  for u in ("alice", "bob")}
    alice_ns, bob_ns = unique("alice"), unique("bob")
    secret = unique("secret")
    with client(pro_box, tokens["alice"]) as c:
        assert c.post("/namespaces", json={"name": alice_ns}).status_code == 201
        made = c.post("/pipelines", json={"namespace": alice_ns, "layer": "bronze",
                                          "name": secret, "source": f"SELECT {SECRET} AS pin"})
        assert made.status_code == 201, made.text
        run = c.post("/runs", json={"namespace": alice_ns, "layer": "bronze", "pipeline": secret})
        assert wait_run(c, run.json()["run_id"])["status"] == "success"
    with client(pro_box, tokens["bob"]) as c:
        assert c.post("/namespaces", json={"name": bob_ns}).status_code == 201
    path = pro_box.data_dir / "storage" / "_warehouse" / alice_ns / "bronze" / secret / "data"
    assert list(path.rglob("*.parquet")), "alice's table has data files"
    return {**tokens, "alice_ns": alice_ns, "bob_ns": bob_ns, "secret": secret,
            "ident": f"{alice_ns}.bronze.{secret}", "files": f"{path}/**/*.parquet"}


def _bob_pipeline(c: httpx.Client, world: dict[str, str], source: str, kind: str) -> str:
    name = unique("thief")
    made = c.post("/pipelines", json={"namespace": world["bob_ns"], "layer": "silver",
                                      "name": name, "type": kind, "source": source})
    assert made.status_code == 201, made.text
    return name


def _no_secret(text: str) -> None:
    assert str(SECRET) not in text, f"alice's data leaked: {text[:300]}"


ATTACKS = {
    "sql ref": ("sql", "SELECT * FROM {{{{ ref('{ident}') }}}}"),
    "sql raw path": ("sql", "SELECT * FROM read_parquet('{files}')"),
    "python ref": ("python", "result = duckdb_conn.sql('SELECT * FROM ' + ref('{ident}')).arrow()"),
    "python raw duckdb": ("python", ESCAPE + "result = imp('duckdb').connect().sql("
                          "\"SELECT * FROM read_parquet('{files}')\").arrow()"),
    "python raw file": ("python", ESCAPE + "data = imp('builtins').open("
                        "imp('glob').glob('{files}', recursive=True)[0], 'rb').read()\n"
                        "result = pa.table({{'b': [data.hex()]}})"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_bob_cannot_read_alice_from_a_pipeline(pro_box: RatServer, world: dict[str, str],
                                               attack: str) -> None:
    kind, template = ATTACKS[attack]
    source = template.format(ident=world["ident"], files=world["files"])
    with client(pro_box, world["bob"]) as c:
        name = _bob_pipeline(c, world, source, kind)
        preview = c.post(f"/pipelines/{world['bob_ns']}/silver/{name}/preview", json={})
        assert preview.status_code == 200, preview.text
        assert preview.json().get("error"), preview.text
        _no_secret(preview.text)
        run = c.post("/runs", json={"namespace": world["bob_ns"], "layer": "silver",
                                    "pipeline": name})
        done = wait_run(c, run.json()["run_id"])
        assert done["status"] == "failed", done
        _no_secret(str(done))
        if "ref" in attack:
            assert "does not exist" in str(done["error"]), done["error"]
        logs = c.get(f"/runs/{done['id']}/logs")
        _no_secret(logs.text)
        query = c.post("/query", json={"sql": f"SELECT * FROM silver.{name}",
                                       "namespace": world["bob_ns"]})
        _no_secret(query.text)


def test_bob_quality_test_cannot_read_alice(pro_box: RatServer, world: dict[str, str]) -> None:
    with client(pro_box, world["bob"]) as c:
        name = _bob_pipeline(c, world, "SELECT 1 AS id", "sql")
        base = f"/files/{world['bob_ns']}/pipelines/silver/{name}/tests/quality/peek.sql"
        test_sql = f"SELECT * FROM {{{{ ref('{world['ident']}') }}}} WHERE pin = {SECRET}"
        assert c.put(base, json={"content": test_sql}).status_code == 200
        run = c.post("/runs", json={"namespace": world["bob_ns"], "layer": "silver",
                                    "pipeline": name})
        done = wait_run(c, run.json()["run_id"])
        _no_secret(c.get(f"/runs/{done['id']}").text)
        _no_secret(c.get(f"/runs/{done['id']}/logs").text)
        assert done["status"] == "failed", done  # the test errors: the gate holds
        assert "peek" in str(done["error"]), done["error"]


def test_alice_still_reads_her_own_table(pro_box: RatServer, world: dict[str, str]) -> None:
    with client(pro_box, world["alice"]) as c:
        name = unique("mine")
        made = c.post("/pipelines", json={
            "namespace": world["alice_ns"], "layer": "silver", "name": name,
            "source": f"SELECT pin FROM {{{{ ref('bronze.{world['secret']}') }}}}"})
        assert made.status_code == 201
        run = c.post("/runs", json={"namespace": world["alice_ns"], "layer": "silver",
                                    "pipeline": name})
        assert wait_run(c, run.json()["run_id"])["status"] == "success"
