"""Publish validation, versions, runs of the published version, rollback with data restore."""

from __future__ import annotations

import httpx

from tests.conftest import unique
from tests.e2e.wap_client import PipelineClient


def _validation(resp: httpx.Response) -> dict[str, tuple[list[str], list[str]]]:
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["error"] == {"code": "INVALID_ARGUMENT", "type": "VALIDATION",
                             "message": "pipeline validation failed"}
    assert body["validation"]["valid"] is False
    return {f["path"].rsplit("/", 1)[-1]: (f["errors"], f["warnings"])
            for f in body["validation"]["files"]}


def test_publish_reports_per_file_errors(api: httpx.Client) -> None:
    p = PipelineClient(api, "silver", unique("bad")).create("SELECT 1 AS id")
    p.write("pipeline.sql", "-- @merge_strategy: incremental\nSELECT *\nFROM x\n{% if %}\n")
    p.write("config.yaml", "owner_team: data\n")
    files = _validation(p.publish())
    errors, _ = files["pipeline.sql"]
    assert errors, errors
    assert errors[0].startswith("line 4:"), errors
    assert files["config.yaml"] == (["merge_strategy 'incremental' requires unique_key"],
                                    ["unknown key 'owner_team' in config.yaml"])
    assert p.get()["current_version"] is None
    assert api.get(f"{p.base}/versions").json() == {"versions": [], "total": 0}


def test_publish_python_without_result(api: httpx.Client) -> None:
    p = PipelineClient(api, "silver", unique("py")).create("x = 1\n", "python")
    files = _validation(p.publish())
    assert files["pipeline.py"][0] == ["pipeline.py must set `result`"]


def test_versions_runs_and_rollback_with_data(api: httpx.Client) -> None:
    p = PipelineClient(api, "gold", unique("ver")).create("SELECT 1 AS id")
    first = p.publish("first")
    assert first.status_code == 200, first.text
    body = first.json()
    assert (body["status"], body["version"], body["message"]) == ("published", 1, "first")
    assert set(body["versions"]) == {"pipeline.sql", "config.yaml"}
    assert all(v.startswith("sha256:") for v in body["versions"].values())
    assert body["validation"]["valid"] is True
    assert p.publish().json()["status"] == "unchanged"
    assert p.get()["draft_dirty"] is False
    assert p.get()["current_version"] == 1

    run1 = p.run()
    assert (run1["status"], run1["version_number"]) == ("success", 1), run1
    p.write("pipeline.sql", "SELECT 2 AS id, 'b' AS extra")
    assert p.get()["draft_dirty"] is True
    run1 = p.run()
    assert run1["status"] == "success"
    assert p.rows() == [{"id": 1}]  # runs execute the published version, not the draft

    assert p.publish("second").json()["version"] == 2
    run2 = p.run()
    assert run2["version_number"] == 2
    assert p.rows() == [{"id": 2, "extra": "b"}]
    versions = api.get(f"{p.base}/versions").json()
    assert [v["version_number"] for v in versions["versions"]] == [2, 1]
    assert versions["versions"][1]["data_snapshot_id"] == run1["snapshot_id"]
    v1 = api.get(f"{p.base}/versions/1", params={"include": "content"}).json()
    files = {f["path"]: f["content"] for f in v1["files"]}
    assert files["pipeline.sql"] == "SELECT 1 AS id"

    rolled = api.post(f"{p.base}/rollback", json={"version": 1, "restore_data": True})
    assert rolled.status_code == 200, rolled.text
    out = rolled.json()
    assert (out["status"], out["from_version"], out["new_version"]) == ("rolled_back", 1, 3)
    assert out["message"] == "Rollback to v1"
    assert out["data_restored"] is True
    assert out["snapshot_id"] not in (None, run1["snapshot_id"], run2["snapshot_id"])
    assert p.rows() == [{"id": 1}]
    pipeline = p.get()
    assert pipeline["current_version"] == 3
    assert pipeline["draft_dirty"] is True
    assert api.get(f"/files/{p.prefix}pipeline.sql").json()["content"] == \
        "SELECT 2 AS id, 'b' AS extra"  # the draft is untouched
    run3 = p.run()
    assert run3["version_number"] == 3
    assert p.rows() == [{"id": 1}]


def test_rollback_refusals(api: httpx.Client) -> None:
    p = PipelineClient(api, "gold", unique("rb")).create("SELECT 1 AS id")
    assert p.publish().status_code == 200
    resp = api.post(f"{p.base}/rollback", json={"version": 1, "restore_data": True})
    assert resp.status_code == 409
    assert "no retained data snapshot" in resp.json()["error"]["message"]
    assert api.post(f"{p.base}/rollback", json={"version": 9}).status_code == 404
    assert api.post(f"{p.base}/rollback", json={"version": 0}).status_code == 400
    assert api.post(f"{p.base}/rollback", json={}).status_code == 400
    plain = api.post(f"{p.base}/rollback", json={"version": 1, "message": "again"}).json()
    assert (plain["new_version"], plain["data_restored"], plain["snapshot_id"]) == (2, False, None)
    assert api.get(f"{p.base}/versions/abc").status_code == 400
    assert api.get(f"{p.base}/versions/7").status_code == 404


def test_metadata_sidecars(api: httpx.Client) -> None:
    p = PipelineClient(api, "gold", unique("meta")).create("SELECT 1 AS id")
    assert api.get(f"{p.base}/metadata").status_code == 404
    p.write("pipeline.meta.yaml", "owner: data-team\n")
    resp = api.get(f"/metadata/default/pipeline/gold/{p.name}")
    assert resp.json() == {"path": f"{p.prefix}pipeline.meta.yaml", "content": "owner: data-team\n"}


def test_retention_endpoints(api: httpx.Client) -> None:
    p = PipelineClient(api, "gold", unique("ret")).create("SELECT 1 AS id")
    view = api.get(f"{p.base}/retention").json()
    assert view["overrides"] is None
    assert view["effective"] == view["system"]
    assert api.put(f"{p.base}/retention", json={"logs_max_age_days": 3}).status_code == 204
    view = api.get(f"{p.base}/retention").json()
    assert (view["overrides"], view["effective"]["logs_max_age_days"]) == (
        {"logs_max_age_days": 3}, 3)
    assert api.put(f"{p.base}/retention", json={"reaper_interval_minutes": 5}).status_code == 400
    assert api.put(f"{p.base}/retention", json={}).status_code == 204
    assert api.get(f"{p.base}/retention").json()["overrides"] is None
