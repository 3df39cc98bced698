"""Namespaces over HTTP: CRUD, `default` protected, non-empty refused unless forced, forced delete
removes pipelines, tables, zones and stored objects (local disk and S3)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RatServer, unique
from tests.e2e.helpers_data import add_zone, make_table, sql, stored_keys


@pytest.fixture
def client(ns_server: RatServer) -> Iterator[httpx.Client]:
    with ns_server.client() as c:
        yield c


def error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    assert resp.json()["error"]["code"] == code
    return str(resp.json()["error"]["message"])


def test_without_the_feature_only_default_exists(api: httpx.Client) -> None:
    listed = api.get("/namespaces").json()
    assert [n["name"] for n in listed["namespaces"]] == ["default"]
    assert listed["total"] == 1
    assert "rat-namespaces" in error(api.post("/namespaces", json={"name": "x"}), 501,
                                     "NOT_IMPLEMENTED")
    error(api.delete("/namespaces/default"), 501, "NOT_IMPLEMENTED")
    assert api.put("/namespaces/default", json={"description": "Main"}).status_code == 204


def test_create_list_update(client: httpx.Client) -> None:
    name = unique("ns")
    created = client.post("/namespaces", json={"name": name, "description": "Sales"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["name"] == name
    assert body["description"] == "Sales"
    assert body["created_by"] is None
    assert body["created_at"].endswith("Z")
    error(client.post("/namespaces", json={"name": name}), 409, "ALREADY_EXISTS")
    error(client.post("/namespaces", json={"name": "Bad Name"}), 400, "INVALID_ARGUMENT")
    error(client.post("/namespaces", json={"name": "_warehouse"}), 400, "INVALID_ARGUMENT")
    error(client.post("/namespaces", json={"name": "memory"}), 400, "INVALID_ARGUMENT")
    assert client.put(f"/namespaces/{name}", json={"description": "Sales (EU)"}).status_code \
        == 204
    error(client.put(f"/namespaces/{name}", json={}), 400, "INVALID_ARGUMENT")
    error(client.put("/namespaces/nope-nope", json={"description": "x"}), 404, "NOT_FOUND")
    listed = client.get("/namespaces", params={"limit": 200}).json()
    mine = [n for n in listed["namespaces"] if n["name"] == name]
    assert mine[0]["description"] == "Sales (EU)"
    assert listed["total"] >= 2
    error(client.get("/namespaces", params={"limit": 0}), 400, "INVALID_ARGUMENT")
    assert client.delete(f"/namespaces/{name}").status_code == 204, "an empty one just goes"
    assert name not in [n["name"] for n in client.get("/namespaces").json()["namespaces"]]


def test_default_cannot_be_deleted_and_missing_is_404(client: httpx.Client) -> None:
    assert "default" in error(client.delete("/namespaces/default"), 403, "FORBIDDEN")
    assert "default" in error(client.delete("/namespaces/default", params={"force": "true"}),
                              403, "FORBIDDEN")
    error(client.delete("/namespaces/no-such-ns"), 404, "NOT_FOUND")


def test_non_empty_is_refused_unless_forced(client: httpx.Client, ns_server: RatServer) -> None:
    ns = unique("full")
    assert client.post("/namespaces", json={"name": ns}).status_code == 201
    make_table(client, "silver", "orders", "SELECT 1 AS id", namespace=ns)
    add_zone(ns_server, ns, "inbox")
    assert stored_keys(ns_server, f"{ns}/")
    assert stored_keys(ns_server, f"_warehouse/{ns}/")

    message = error(client.delete(f"/namespaces/{ns}"), 409, "FAILED_PRECONDITION")
    assert "1 pipelines, 1 tables, 1 landing zones" in message
    assert client.get(f"/pipelines/{ns}/silver/orders").status_code == 200

    assert client.delete(f"/namespaces/{ns}", params={"force": "true"}).status_code == 204
    assert ns not in [n["name"] for n in
                      client.get("/namespaces", params={"limit": 200}).json()["namespaces"]]
    assert client.get(f"/pipelines/{ns}/silver/orders").status_code == 404
    assert client.get(f"/tables/{ns}/silver/orders").status_code == 404
    assert client.post("/query", json={"sql": f"SELECT * FROM {ns}.silver.orders"}) \
        .status_code == 400
    assert stored_keys(ns_server, f"{ns}/") == []
    assert stored_keys(ns_server, f"_warehouse/{ns}/") == []
    assert sql(ns_server, "SELECT 1 FROM landing_zones WHERE namespace = $1", ns) == []
    assert sql(ns_server, "SELECT 1 FROM pipelines WHERE namespace = $1", ns) == []

    # The name is free again, and so are its tables.
    assert client.post("/namespaces", json={"name": ns}).status_code == 201
    make_table(client, "silver", "orders", "SELECT 2 AS id", namespace=ns)
    out = client.post("/query", json={"sql": "SELECT id FROM silver.orders", "namespace": ns})
    assert out.json()["rows"] == [{"id": 2}]
    assert client.delete(f"/namespaces/{ns}", params={"force": "1"}).status_code == 204
