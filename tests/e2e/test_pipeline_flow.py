"""A new user's path over HTTP alone, on local disk and on S3: create, write SQL, run, query."""

from __future__ import annotations

import httpx

from tests.conftest import RatServer, unique, wait_run


def _create(client: httpx.Client, layer: str, name: str, source: str) -> None:
    resp = client.post("/pipelines", json={"namespace": "default", "layer": layer, "name": name,
                                           "source": source})
    assert resp.status_code == 201, resp.text


def _run(client: httpx.Client, layer: str, name: str) -> dict[str, object]:
    resp = client.post("/runs", json={"namespace": "default", "layer": layer, "pipeline": name})
    assert resp.status_code == 202, resp.text
    assert resp.json()["status"] == "pending"
    return wait_run(client, resp.json()["run_id"])


def test_create_write_run_query(rat_server: RatServer) -> None:
    name = unique("orders")
    with rat_server.client() as client:
        _create(client, "silver", name, "SELECT 1 AS id")
        path = f"default/pipelines/silver/{name}/pipeline.sql"
        sql = ("SELECT * FROM (VALUES (1, 'ann', 10.5), (2, 'bob', 20.25), (3, 'cy', 7.0))"
               " AS t(id, customer, amount)")
        put = client.put(f"/files/{path}", json={"content": sql})
        assert put.status_code == 200, put.text
        assert put.json()["status"] == "written"

        run = _run(client, "silver", name)
        assert run["status"] == "success", run
        assert run["rows_written"] == 3
        assert run["version_number"] is None

        rows = client.post("/query", json={"sql": f"SELECT id, customer FROM silver.{name} ORDER BY id"})
        assert rows.status_code == 200, rows.text
        body = rows.json()
        assert body["rows"] == [{"id": 1, "customer": "ann"}, {"id": 2, "customer": "bob"},
                                {"id": 3, "customer": "cy"}]
        assert [c["type"] for c in body["columns"]] == ["INTEGER", "VARCHAR"]
        assert body["truncated"] is False

        tables = client.get("/tables", params={"search": name}).json()
        assert [(t["name"], t["row_count"]) for t in tables["tables"]] == [(name, 3)]


def test_ref_chain_reads_upstream_snapshot(rat_server: RatServer) -> None:
    up, down = unique("src"), unique("agg")
    with rat_server.client() as client:
        _create(client, "bronze", up, "SELECT range AS n FROM range(10)")
        assert _run(client, "bronze", up)["status"] == "success"
        _create(client, "gold", down, f"SELECT sum(n) AS total FROM {{{{ ref('bronze.{up}') }}}}")
        assert _run(client, "gold", down)["status"] == "success"
        out = client.post("/query", json={"sql": f"SELECT total FROM gold.{down}"}).json()
        assert out["rows"] == [{"total": 45}]


def test_failed_sql_keeps_previous_table(rat_server: RatServer) -> None:
    name = unique("keep")
    with rat_server.client() as client:
        _create(client, "silver", name, "SELECT 1 AS id UNION ALL SELECT 2")
        assert _run(client, "silver", name)["status"] == "success"
        path = f"default/pipelines/silver/{name}/pipeline.sql"
        client.put(f"/files/{path}", json={"content": "SELECT * FROM no_such_table"})
        run = _run(client, "silver", name)
        assert run["status"] == "failed"
        assert "no_such_table" in str(run["error"])
        out = client.post("/query", json={"sql": f"SELECT count(*) AS n FROM silver.{name}"})
        assert out.json()["rows"] == [{"n": 2}]


def test_full_refresh_with_zero_rows_empties_table(rat_server: RatServer) -> None:
    name = unique("empty")
    with rat_server.client() as client:
        _create(client, "silver", name, "SELECT 1 AS id")
        assert _run(client, "silver", name)["status"] == "success"
        path = f"default/pipelines/silver/{name}/pipeline.sql"
        client.put(f"/files/{path}", json={"content": "SELECT 1 AS id WHERE false"})
        run = _run(client, "silver", name)
        assert run["status"] == "success"
        assert run["rows_written"] == 0
        out = client.post("/query", json={"sql": f"SELECT count(*) AS n FROM silver.{name}"})
        assert out.json()["rows"] == [{"n": 0}]
