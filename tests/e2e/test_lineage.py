"""The lineage graph over HTTP: nodes, edges and node extras built from pipeline code."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RatServer, unique
from tests.e2e.helpers_data import add_zone, make_table


@pytest.fixture
def client(ns_server: RatServer) -> Iterator[httpx.Client]:
    with ns_server.client() as c:
        yield c


def create(client: httpx.Client, ns: str, layer: str, name: str, source: str,
           kind: str = "sql") -> None:
    resp = client.post("/pipelines", json={"namespace": ns, "layer": layer, "name": name,
                                           "source": source, "type": kind})
    assert resp.status_code == 201, resp.text


def graph(client: httpx.Client, ns: str) -> dict[str, Any]:
    resp = client.get("/lineage", params={"namespace": ns})
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def test_lineage_graph(client: httpx.Client, ns_server: RatServer) -> None:
    ns = unique("lin")
    assert client.post("/namespaces", json={"name": ns}).status_code == 201
    add_zone(ns_server, ns, "inbox", files=2)
    add_zone(ns_server, ns, "unused", files=0)
    create(client, ns, "bronze", "raw", "SELECT * FROM read_csv('{{ landing_zone(\"inbox\") }}')")
    make_table(client, "bronze", "src", "SELECT range AS id FROM range(5)", namespace=ns)
    make_table(client, "silver", "mid", "SELECT * FROM {{ ref('bronze.src') }}", namespace=ns)
    config = ("columns:\n  - name: id\n    tests:\n"
              "      - relationships: {to: silver.dim, field: id}\n")
    assert client.put(f"/files/{ns}/pipelines/silver/mid/config.yaml",
                      json={"content": config}).status_code == 200
    create(client, ns, "gold", "agg", "df = ref('silver.mid')\nresult = df\n", kind="python")
    create(client, ns, "gold", "x2", "SELECT * FROM {{ ref('default.silver.somewhere') }}")
    make_table(client, "bronze", "old", "SELECT 1 AS id", namespace=ns)
    assert client.delete(f"/pipelines/{ns}/bronze/old").status_code == 204

    out = graph(client, ns)
    nodes = {n["id"]: n for n in out["nodes"]}
    pipelines = {f"pipeline:{ns}.{p}" for p in
                 ("bronze.raw", "bronze.src", "silver.mid", "gold.agg", "gold.x2")}
    tables = {f"table:{ns}.{t}" for t in ("bronze.raw", "bronze.src", "silver.mid",
                                          "silver.dim", "gold.agg", "gold.x2", "bronze.old")}
    assert set(nodes) == pipelines | tables | {"table:default.silver.somewhere",
                                               f"landing:{ns}.inbox", f"landing:{ns}.unused"}
    edges = {(e["source"], e["target"], e["type"]) for e in out["edges"]}
    produces = {(p, p.replace("pipeline:", "table:"), "produces") for p in pipelines}
    assert edges == produces | {
        (f"table:{ns}.bronze.src", f"pipeline:{ns}.silver.mid", "ref"),
        (f"table:{ns}.silver.dim", f"pipeline:{ns}.silver.mid", "ref"),
        (f"table:{ns}.silver.mid", f"pipeline:{ns}.gold.agg", "ref"),
        ("table:default.silver.somewhere", f"pipeline:{ns}.gold.x2", "ref"),
        (f"landing:{ns}.inbox", f"pipeline:{ns}.bronze.raw", "landing_input")}

    src = nodes[f"pipeline:{ns}.bronze.src"]
    assert src["type"] == "pipeline"
    assert (src["namespace"], src["layer"], src["name"]) == (ns, "bronze", "src")
    assert src["latest_run"]["status"] == "success"
    assert set(src["latest_run"]) == {"id", "status", "started_at", "duration_ms"}
    assert src["quality"] == {"total": 0, "passed": 0, "failed": 0, "warned": 0}
    assert "latest_run" not in nodes[f"pipeline:{ns}.bronze.raw"]
    assert nodes[f"table:{ns}.bronze.src"]["table_stats"]["row_count"] == 5
    assert nodes[f"table:{ns}.bronze.src"]["table_stats"]["size_bytes"] > 0
    assert "table_stats" not in nodes[f"table:{ns}.silver.dim"]
    assert nodes[f"table:{ns}.bronze.old"]["table_stats"]["row_count"] == 1
    assert nodes[f"landing:{ns}.inbox"] == {"id": f"landing:{ns}.inbox", "type": "landing_zone",
                                            "namespace": ns, "name": "inbox",
                                            "landing_info": {"file_count": 2}}
    assert nodes[f"landing:{ns}.unused"]["landing_info"] == {"file_count": 0}

    # A file write changes the code, so the next graph reflects it.
    assert client.put(f"/files/{ns}/pipelines/silver/mid/pipeline.sql", json={
        "content": "SELECT * FROM {{ ref('bronze.raw') }}"}).status_code == 200
    edges = {(e["source"], e["target"], e["type"]) for e in graph(client, ns)["edges"]}
    assert (f"table:{ns}.bronze.raw", f"pipeline:{ns}.silver.mid", "ref") in edges
    assert (f"table:{ns}.bronze.src", f"pipeline:{ns}.silver.mid", "ref") not in edges

    everything = client.get("/lineage").json()
    assert f"pipeline:{ns}.gold.agg" in {n["id"] for n in everything["nodes"]}
    assert client.get("/lineage", params={"namespace": "Not A Slug"}).status_code == 400
    assert client.delete(f"/namespaces/{ns}", params={"force": "true"}).status_code == 204
