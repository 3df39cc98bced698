"""Preview over HTTP: a dry run of the draft that writes nothing; Python pipelines end to end."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RatServer, start_server, unique
from tests.e2e.wap_client import PipelineClient

ROWS = "SELECT range AS id, 'n' || range AS label FROM range(250)"


def test_sql_preview_writes_nothing(api: httpx.Client) -> None:
    p = PipelineClient(api, "silver", unique("pv")).create(ROWS)
    resp = api.post(f"{p.base}/preview", json={"limit": 5})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert "error" not in out
    assert out["columns"] == [{"name": "id", "type": "BIGINT"}, {"name": "label", "type": "VARCHAR"}]
    assert out["rows"][:2] == [{"id": 0, "label": "n0"}, {"id": 1, "label": "n1"}]
    assert len(out["rows"]) == 5
    assert out["total_row_count"] == 250
    assert [ph["name"] for ph in out["phases"]] == ["load", "compile", "execute", "profile"]
    assert "CREATE_TABLE_AS" in out["explain_output"]
    assert out["memory_peak_bytes"] >= 0
    assert out["warnings"] == []
    assert "quality" not in out
    assert out["schema_diff"] is None
    assert api.get("/runs", params={"pipeline": p.name}).json()["total"] == 0
    assert api.post("/query", json={"sql": f"SELECT 1 FROM silver.{p.name}"}).status_code == 400
    assert len(api.post(f"{p.base}/preview?limit=7").json()["rows"]) == 7
    assert len(api.post(f"{p.base}/preview?limit=7", json={"limit": 3}).json()["rows"]) == 3
    assert len(api.post(f"{p.base}/preview").json()["rows"]) == 100
    for bad in (0, 1001):
        assert api.post(f"{p.base}/preview", json={"limit": bad}).status_code == 400
    assert api.post("/pipelines/default/silver/nope/preview").status_code == 404


def test_inline_code_errors_tests_and_schema_diff(api: httpx.Client) -> None:
    p = PipelineClient(api, "silver", unique("pvc")).create("SELECT 1 AS id, 'a' AS name")
    assert p.run()["status"] == "success"
    out = api.post(f"{p.base}/preview", json={
        "code": "SELECT 2 AS id, 3.5 AS score", "run_tests": True}).json()
    assert out["rows"] == [{"id": 2, "score": 3.5}]
    assert out["schema_diff"] == {"added": [{"name": "score", "type": "DECIMAL(2,1)"}],
                                  "removed": [{"name": "name", "type": "VARCHAR"}], "changed": []}
    assert out["quality"] == []
    bad = api.post(f"{p.base}/preview", json={"code": "SELECT * FROM\n{{ ref('silver.none') }}"})
    assert bad.status_code == 200
    assert "silver.none" in bad.json()["error"]
    syntax = api.post(f"{p.base}/preview", json={"code": "SELECT 1 FROM {% if %}"}).json()
    assert syntax["error"].startswith("pipeline.sql line 1:")
    p.write("tests/quality/no_twos.sql", "SELECT * FROM {{ this }} WHERE id = 2")
    p.write("config.yaml", "columns:\n  - name: id\n    tests: [not_null]\n")
    tested = api.post(f"{p.base}/preview", json={"code": "SELECT 2 AS id", "run_tests": True})
    results = {q["name"]: (q["status"], q["row_count"]) for q in tested.json()["quality"]}
    assert results == {"id__not_null": ("pass", 0), "no_twos": ("fail", 1)}
    assert p.rows() == [{"id": 1, "name": "a"}]


def test_landing_samples_and_fallback(api: httpx.Client, local_server: RatServer) -> None:
    zone = unique("zone")
    samples = local_server.data_dir / "storage" / "default" / "landing" / zone / "_samples"
    samples.mkdir(parents=True)
    (samples / "a.csv").write_text("id,v\n1,x\n2,y\n")
    (samples / "b.csv").write_text("id,v\n3,z\n")
    src = f"SELECT * FROM read_csv('{{{{ landing_zone(\"{zone}\") }}}}') ORDER BY id"
    p = PipelineClient(api, "bronze", unique("lz")).create(src)
    out = api.post(f"{p.base}/preview").json()
    assert [r["id"] for r in out["rows"]] == [1, 2, 3], out
    out = api.post(f"{p.base}/preview", json={"sample_files": ["b.csv", "c.csv"]}).json()
    assert [r["id"] for r in out["rows"]] == [3]
    assert out["warnings"] == ["sample files not found: c.csv"]
    other = unique("empty")
    live = local_server.data_dir / "storage" / "default" / "landing" / other
    live.mkdir(parents=True)
    (live / "20260101_000000_x.csv").write_text("id\n9\n")
    code = f"SELECT * FROM read_csv('{{{{ landing_zone(\"{other}\") }}}}')"
    out = api.post(f"{p.base}/preview", json={"code": code}).json()
    assert out["rows"] == [{"id": 9}]
    assert out["warnings"] == [f"landing zone '{other}' has no sample files: previewing its live files"]


SQL_ENDINGS = {
    "line_comment": " -- trailing comment",
    "commented_where": "\n-- WHERE id > 1\n",
    "semicolon_then_comment": ";\n-- after semicolon",
    "mixed": " /* block */ ; -- one\n ;\t/* two */\n\n",
}


@pytest.mark.parametrize("ending", list(SQL_ENDINGS.values()), ids=list(SQL_ENDINGS))
def test_preview_and_run_of_sql_ending_in_comments(api: httpx.Client, ending: str) -> None:
    p = PipelineClient(api, "silver", unique("cm")).create("SELECT 1 AS id" + ending)
    p.write("tests/quality/no_ones.sql",
            "-- @severity: warn\nSELECT * FROM {{ this }} WHERE id = 1" + ending)
    out = api.post(f"{p.base}/preview", json={"run_tests": True}).json()
    assert "error" not in out, out
    assert out["rows"] == [{"id": 1}]
    assert [(q["name"], q["status"], q["row_count"]) for q in out["quality"]] == \
        [("no_ones", "fail", 1)]
    inline = api.post(f"{p.base}/preview", json={"code": "SELECT 2 AS id" + ending}).json()
    assert inline["rows"] == [{"id": 2}], inline
    run = p.run()
    assert run["status"] == "success", run
    assert p.rows() == [{"id": 1}]


PY = '''log.info("hello from python")
tbl = duckdb_conn.sql("SELECT range AS id FROM range(4)").arrow()
result = tbl
'''


def test_python_pipeline_preview_and_run(rat_server: RatServer) -> None:
    with rat_server.client() as api:
        p = PipelineClient(api, "gold", unique("py")).create(PY, "python")
        out = api.post(f"{p.base}/preview").json()
        assert "error" not in out, out
        assert out["rows"] == [{"id": 0}, {"id": 1}, {"id": 2}, {"id": 3}]
        assert out["explain_output"] == ""
        assert [(r["level"], r["message"]) for r in out["logs"]] == [("info", "hello from python")]
        run = p.run()
        assert run["status"] == "success", run
        assert run["rows_written"] == 4
        logs = [r["message"] for r in api.get(f"/runs/{run['id']}/logs").json()["logs"]]
        assert "hello from python" in logs
        assert p.rows() == [{"id": 0}, {"id": 1}, {"id": 2}, {"id": 3}]
        p.write("pipeline.py", "x = 1\n\nboom = 1 / 0\n")
        failed = p.run()
        assert failed["status"] == "failed"
        assert failed["error"] == "pipeline.py line 3: ZeroDivisionError: division by zero"
        out = api.post(f"{p.base}/preview").json()
        assert out["error"] == "pipeline.py line 3: ZeroDivisionError: division by zero"
        assert len(p.rows()) == 4


@pytest.fixture
def slow_preview_server(pg_base: str, template_db: str) -> Iterator[RatServer]:
    server = start_server(pg_base, template_db, "local", None,
                          {"RAT_PREVIEW_TIMEOUT_SECONDS": "3", "RAT_WORKERS": "1"})
    try:
        yield server
    finally:
        server.stop()


def test_preview_timeout_kills_the_worker(slow_preview_server: RatServer) -> None:
    with slow_preview_server.client() as api:
        p = PipelineClient(api, "silver", unique("slow")).create(
            "SELECT count(*) FROM range(300000) a, range(300000) b WHERE a.range * b.range = 7")
        resp = api.post(f"{p.base}/preview")
        assert resp.status_code == 200
        assert resp.json()["error"] == "timed out after 3 s and was stopped"
        quick = api.post(f"{p.base}/preview", json={"code": "SELECT 1 AS x"}, timeout=60)
        assert quick.json()["rows"] == [{"x": 1}]
