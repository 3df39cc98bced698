"""The quality gate over HTTP: error tests block publishing, warn tests publish, results persist."""

from __future__ import annotations

import httpx

from tests.conftest import unique
from tests.e2e.wap_client import PipelineClient

GOOD = "SELECT * FROM (VALUES (1, 10), (2, 20)) t(id, amount)"
BAD = "SELECT * FROM (VALUES (1, 10), (2, -5), (3, 0), (4, 7)) t(id, amount)"


def test_error_test_fails_the_run_and_keeps_the_table(api: httpx.Client) -> None:
    p = PipelineClient(api, "silver", unique("gate")).create(GOOD)
    first = p.run()
    assert first["status"] == "success", first
    before = p.rows()
    created = api.post(f"{p.base}/tests", json={
        "name": "amount_positive", "sql": "SELECT id, amount FROM {{ this }} WHERE amount <= 0",
        "severity": "error", "description": "amounts must be positive",
        "tags": ["Money"], "remediation": "check the source system"})
    assert created.status_code == 201, created.text
    assert created.json() == {"name": "amount_positive", "severity": "error",
                              "path": f"{p.prefix}tests/quality/amount_positive.sql"}
    p.write("pipeline.sql", BAD)
    run = p.run()
    assert run["status"] == "failed"
    assert run["error"] == ("quality gate failed: amount_positive "
                            "(2 violating rows: amounts must be positive)")
    assert run["snapshot_id"] is None
    assert p.rows() == before
    detail = api.get(f"/runs/{run['id']}").json()
    assert detail["quality"] == {"total": 1, "passed": 0, "failed": 1, "warned": 0}
    assert [ph["name"] for ph in detail["phase_profiles"]] == [
        "load", "compile", "execute", "write", "quality"]
    results = api.get(f"/runs/{run['id']}/quality").json()
    assert (results["total"], results["failed"], results["passed"]) == (1, 1, 0)
    result = results["results"][0]
    assert result["name"] == result["test_name"] == "amount_positive"
    assert (result["status"], result["severity"], result["kind"]) == ("fail", "error", "custom")
    assert result["value"] == result["row_count"] == 2
    assert result["expected"] == 0
    assert sorted(r["id"] for r in result["sample_rows"]) == [2, 3]
    assert result["tags"] == ["money"]
    assert result["remediation"] == "check the source system"
    assert "iceberg_scan(" in result["compiled_sql"]
    assert result["run_id"] == run["id"]


def test_warn_test_publishes_and_records_the_warning(api: httpx.Client) -> None:
    p = PipelineClient(api, "silver", unique("warn")).create(BAD)
    p.write("tests/quality/few_rows.sql",
            "-- @severity: warn\nSELECT * FROM {{ this }} WHERE amount < 0")
    run = p.run()
    assert run["status"] == "success", run
    assert len(p.rows()) == 4
    detail = api.get(f"/runs/{run['id']}").json()
    assert detail["quality"] == {"total": 1, "passed": 0, "failed": 0, "warned": 1}
    assert [ph["name"] for ph in detail["phase_profiles"]][-2:] == ["quality", "publish"]
    result = api.get(f"/runs/{run['id']}/quality").json()["results"][0]
    assert (result["status"], result["severity"], result["row_count"]) == ("fail", "warn", 1)
    logs = api.get(f"/runs/{run['id']}/logs", params={"level": "warn"}).json()["logs"]
    assert any("few_rows" in r["message"] for r in logs)


def test_column_tests_and_test_endpoints(api: httpx.Client) -> None:
    p = PipelineClient(api, "silver", unique("cols")).create(GOOD)
    p.write("config.yaml", "columns:\n  - name: id\n    tests: [not_null, unique]\n")
    assert api.post(f"{p.base}/tests", json={"name": "x", "sql": "SELECT 1"}).status_code == 201
    assert api.post(f"{p.base}/tests", json={"name": "x", "sql": "SELECT 1"}).status_code == 409
    assert api.post(f"{p.base}/tests", json={"name": "Bad", "sql": "SELECT 1"}).status_code == 400
    assert api.post(f"{p.base}/tests", json={"name": "y", "sql": "SELECT 1",
                                             "severity": "loud"}).status_code == 400
    tests = api.get(f"{p.base}/tests").json()
    assert [(t["name"], t["kind"], t["published"]) for t in tests["tests"]] == [
        ("id__not_null", "column", False), ("id__unique", "column", False),
        ("x", "custom", False)]
    updated = api.put(f"{p.base}/tests/x", json={"severity": "warning", "tags": ["a", "B"],
                                                 "sql": "SELECT * FROM {{ this }} WHERE id > 1"})
    assert updated.status_code == 200, updated.text
    assert (updated.json()["severity"], updated.json()["tags"]) == ("warn", ["a", "b"])
    text = api.get(f"/files/{p.prefix}tests/quality/x.sql").json()["content"]
    assert text.startswith("-- @severity: warn\n-- @tags: a, b\n")
    assert api.put(f"{p.base}/tests/nope", json={"sql": "SELECT 1"}).status_code == 404
    assert api.post(f"{p.base}/tests/run").status_code == 409  # no table yet
    run = p.run()
    assert run["status"] == "success", run
    adhoc = api.post(f"{p.base}/tests/run")
    assert adhoc.status_code == 200, adhoc.text
    body = adhoc.json()
    assert (body["total"], body["passed"], body["warned"]) == (3, 2, 1)
    assert all(r["run_id"] is None for r in body["results"])
    assert api.delete(f"{p.base}/tests/x").status_code == 204
    assert api.delete(f"{p.base}/tests/x").status_code == 404
    assert api.get("/runs/00000000-0000-0000-0000-000000000000/quality").status_code == 404
