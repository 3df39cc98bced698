"""Preview, publish, versions, rollback and quality from the pipeline page, over HTTP."""

from __future__ import annotations

import re

from tests.conftest import unique, wait_run
from tests.web.conftest import PageClient

SQL = "SELECT * FROM (VALUES (1, 'ann', 10.5), (2, 'bob', -1.0)) AS t(id, customer, amount)"


def _pipeline(pages: PageClient, source: str = SQL) -> str:
    name = unique("wap")
    with pages.api() as api:
        api.post("/pipelines", json={"namespace": "default", "layer": "silver", "name": name,
                                     "source": source}).raise_for_status()
    return f"/pipelines/default/silver/{name}"


def test_publish_errors_carry_their_line_and_keep_the_message(pages: PageClient) -> None:
    base = _pipeline(pages, "-- @max_retries: 99\n" + SQL)
    bad = pages.post(f"{base}/publish", {"message": "first"}, htmx=True)
    assert bad.status_code == 422
    assert bad.text.lstrip().startswith('<section id="publish-result"')
    assert "Not published" in bad.text
    item = re.search(r'<li class="error"[^>]*data-path="pipeline.sql"[^>]*>', bad.text)
    assert item, bad.text
    assert 'data-line="1"' in item.group(0)
    no_js = pages.post(f"{base}/publish", {"message": "first"})
    assert no_js.status_code == 422
    assert ">first</textarea>" in no_js.text


def test_publish_then_versions_diff_rollback_and_load(pages: PageClient) -> None:
    base = _pipeline(pages)
    ok = pages.post(f"{base}/publish", {"message": "v one"}, htmx=True)
    assert ok.status_code == 200
    assert "Published v1." in ok.text
    assert 'hx-swap-oob="true"' in ok.text
    with pages.api() as api:
        path = base.removeprefix("/pipelines/").replace("/", "/pipelines/", 1)
        api.put(f"/files/{path}/pipeline.sql", json={"content": "SELECT 2 AS id"})
    again = pages.post(f"{base}/publish", {"message": "v two", "then": "run"})
    assert again.status_code == 303
    assert again.headers["location"].startswith("/runs/")
    versions = pages.get(f"{base}?tab=versions&version=2")
    assert "-SELECT * FROM (VALUES" in versions.text
    assert "+SELECT 2 AS id" in versions.text
    against_draft = pages.get(f"{base}?tab=versions&version=1&against=draft")
    assert "v1 → draft" in against_draft.text
    rolled = pages.post(f"{base}/rollback", {"version": "1", "message": "undo-v-two"})
    assert rolled.status_code == 303
    assert "undo-v-two" in pages.get(f"{base}?tab=versions").text
    loaded = pages.post(f"{base}/versions/1/load", {})
    assert loaded.status_code == 303
    assert "VALUES (1, &#39;ann&#39;" in pages.get(loaded.headers["location"]).text
    bad = pages.post(f"{base}/rollback", {"version": "9"}, htmx=True)
    assert bad.status_code == 422
    assert 'role="alert"' in bad.text


def test_preview_tab_and_editor_preview(pages: PageClient) -> None:
    base = _pipeline(pages)
    tab = pages.post(f"{base}/preview", {"limit": "1"}, htmx=True)
    assert tab.status_code == 200
    assert tab.text.lstrip().startswith('<section id="preview-result"')
    assert "2 rows, first 1 shown" in tab.text
    edited = pages.post(f"{base}/preview", {"path": "pipeline.sql",
                                           "content": "SELECT 42 AS answer"}, htmx=True)
    assert "answer" in edited.text
    assert "42" in edited.text
    broken = pages.post(f"{base}/preview", {"path": "pipeline.sql", "content": "SELECT nope"},
                        htmx=True)
    assert broken.status_code == 200
    assert "nope" in broken.text
    assert "error-text" in broken.text
    bad_limit = pages.post(f"{base}/preview", {"limit": "0"}, htmx=True)
    assert bad_limit.status_code == 422
    assert "limit" in bad_limit.text


def test_quality_tests_from_the_tab_gate_and_show_in_the_run(pages: PageClient) -> None:
    base = _pipeline(pages)
    early = pages.post(f"{base}/tests/run", {}, htmx=True)
    assert early.status_code == 422
    assert "does not exist yet" in early.text
    bad = pages.post(f"{base}/tests", {"name": "Bad Name", "sql": "SELECT 1"}, htmx=True)
    assert bad.status_code == 422
    assert 'value="Bad Name"' in bad.text
    test = {"name": "positive", "sql": "SELECT * FROM {{ this }} WHERE amount <= 0",
            "severity": "error", "description": "amounts > 0", "remediation": "fix the feed"}
    assert pages.post(f"{base}/tests", test).status_code == 303
    tab = pages.get(f"{base}?tab=quality&test=positive")
    assert "Edit test positive" in tab.text
    assert "amounts &gt; 0" in tab.text
    run = pages.post(f"{base}/run", {})
    run_id = run.headers["location"].rsplit("/", 1)[1]
    with pages.api() as api:
        assert wait_run(api, run_id)["status"] == "failed"
    page = pages.get(f"/runs/{run_id}")
    assert "quality gate failed" in page.text
    assert "fix the feed" in page.text
    assert "positive" in page.text


def test_pipeline_retention_overrides(pages: PageClient) -> None:
    base = _pipeline(pages)
    bad = pages.post(f"{base}/settings/retention", {"runs_max_age_days": "-1",
                                                    "logs_max_age_days": "x"}, htmx=True)
    assert bad.status_code == 422
    assert bad.text.count('role="alert"') == 2
    assert 'value="-1"' in bad.text
    ok = pages.post(f"{base}/settings/retention", {"runs_max_age_days": "12",
                                                   "logs_max_age_days": ""}, htmx=True)
    assert ok.status_code == 200
    with pages.api() as api:
        assert api.get(f"{base}/retention").json()["overrides"] == {"runs_max_age_days": 12}
