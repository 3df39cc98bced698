"""Bad input gets the error envelope with a 4xx and leaves nothing half-written."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import unique


def _error(resp: httpx.Response, status: int, code: str) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) >= {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["type"]
    return str(body["error"]["message"])


@pytest.mark.parametrize(("payload", "fragment"), [
    ({"namespace": "default", "layer": "silver", "name": "Bad Name"}, "name"),
    ({"namespace": "default", "layer": "platinum", "name": "ok"}, "layer"),
    ({"namespace": "default", "layer": "silver", "name": "x", "type": "rust"}, "type"),
    ({"namespace": "default", "layer": "silver", "name": 5}, "name"),
    ({"namespace": "default", "layer": "silver", "name": "ok", "merge_strategy": "magic"},
     "merge_strategy"),
])
def test_create_pipeline_rejects_bad_fields(api: httpx.Client, payload: dict[str, object],
                                            fragment: str) -> None:
    message = _error(api.post("/pipelines", json=payload), 400, "INVALID_ARGUMENT")
    assert fragment in message


def test_duplicate_pipeline_is_conflict(api: httpx.Client) -> None:
    name = unique("dup")
    body = {"namespace": "default", "layer": "silver", "name": name}
    assert api.post("/pipelines", json=body).status_code == 201
    _error(api.post("/pipelines", json=body), 409, "ALREADY_EXISTS")


def test_unknown_namespace_is_not_found(api: httpx.Client) -> None:
    resp = api.post("/pipelines", json={"namespace": "nope", "layer": "silver", "name": "x"})
    _error(resp, 404, "NOT_FOUND")


def test_unknown_pipeline_and_run(api: httpx.Client) -> None:
    _error(api.get("/pipelines/default/silver/missing"), 404, "NOT_FOUND")
    _error(api.get("/runs/00000000-0000-0000-0000-000000000000"), 404, "NOT_FOUND")
    _error(api.get("/runs/not-a-uuid"), 400, "INVALID_ARGUMENT")
    resp = api.post("/runs", json={"namespace": "default", "layer": "silver", "pipeline": "nope"})
    _error(resp, 404, "NOT_FOUND")


def test_body_that_is_not_json(api: httpx.Client) -> None:
    resp = api.post("/pipelines", content=b"{nope", headers={"Content-Type": "application/json"})
    _error(resp, 400, "INVALID_ARGUMENT")
    resp = api.post("/pipelines", content=b"name=x", headers={"Content-Type": "text/plain"})
    _error(resp, 415, "INVALID_ARGUMENT")
    resp = api.post("/pipelines", content=b"[1, 2]", headers={"Content-Type": "application/json"})
    _error(resp, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("path", [
    "default/pipelines/silver/x/../../../../etc/passwd",
    "default/pipelines/silver/x/%2e%2e/%2e%2e/secret",
    "default/pipelines/silver/x/%252e%252e/secret",
    "default/pipelines/silver/x\\..\\y",
    "_warehouse/default/silver/x/metadata/v1.json",
])
def test_files_api_refuses_traversal(api: httpx.Client, path: str) -> None:
    resp = api.get(f"/files/{path}")
    assert resp.status_code in (400, 404), resp.text
    assert "error" in resp.json()
    write = api.put(f"/files/{path}", json={"content": "x"})
    assert write.status_code in (400, 404), write.text


def test_write_outside_pipeline_folder_is_refused(api: httpx.Client) -> None:
    resp = api.put("/files/default/pipelines/notes.txt", json={"content": "x"})
    _error(resp, 400, "INVALID_ARGUMENT")
    resp = api.put("/files/default/pipelines/silver/ghost/pipeline.sql", json={"content": "x"})
    _error(resp, 404, "NOT_FOUND")


def test_delete_missing_file_is_404(api: httpx.Client) -> None:
    name = unique("del")
    api.post("/pipelines", json={"namespace": "default", "layer": "gold", "name": name})
    resp = api.delete(f"/files/default/pipelines/gold/{name}/tests/quality/none.sql")
    _error(resp, 404, "NOT_FOUND")


def test_list_parameters_are_validated(api: httpx.Client) -> None:
    _error(api.get("/pipelines", params={"limit": 0}), 400, "INVALID_ARGUMENT")
    _error(api.get("/pipelines", params={"limit": 201}), 400, "INVALID_ARGUMENT")
    _error(api.get("/pipelines", params={"sort": "owner"}), 400, "INVALID_ARGUMENT")
    _error(api.get("/runs", params={"status": "weird"}), 400, "INVALID_ARGUMENT")
    _error(api.get("/runs", params={"started_after": "yesterday"}), 400, "INVALID_ARGUMENT")
