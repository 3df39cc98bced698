"""Pages over HTTP against a real server: full page vs htmx block, CSP, CSRF, forms that keep what
the user typed on bad input, and fragments that stop polling by themselves."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.conftest import unique, wait_run
from tests.web.conftest import PageClient

MAIN_PAGES = ["/", "/pipelines", "/runs", "/query", "/explorer", "/settings", "/settings/plugins"]


def _pipeline(pages: PageClient, layer: str = "silver", source: str = "SELECT 1 AS id") -> str:
    name = unique("pg")
    with pages.api() as api:
        resp = api.post("/pipelines", json={"namespace": "default", "layer": layer,
                                            "name": name, "source": source})
        assert resp.status_code == 201, resp.text
    return name


@pytest.mark.parametrize("path", MAIN_PAGES)
def test_page_has_nonce_csp_and_only_nonced_scripts(pages: PageClient, path: str) -> None:
    resp = pages.get(path)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/html")
    csp = resp.headers["content-security-policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp)
    assert nonce, csp
    assert "default-src 'self'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "unsafe-eval" not in csp
    assert "script-src 'self' 'nonce-" in csp
    scripts = re.findall(r"<script\b[^>]*>", resp.text)
    assert scripts
    assert all(f'nonce="{nonce.group(1)}"' in s and "src=" in s for s in scripts), scripts
    assert resp.headers["x-frame-options"] == "DENY"
    assert '"selfRequestsOnly": true' in resp.text
    assert '"allowEval": false' in resp.text


def test_htmx_request_gets_only_the_named_block(pages: PageClient) -> None:
    full = pages.get("/runs")
    block = pages.get("/runs", htmx=True)
    assert "<html" in full.text
    assert 'id="runs-table"' in full.text
    assert block.text.lstrip().startswith('<section id="runs-table"')
    assert "<html" not in block.text
    assert block.headers["vary"] == "HX-Request"


def test_form_post_without_csrf_token_is_refused(pages: PageClient) -> None:
    pages.get("/pipelines")
    name = unique("csrf")
    refused = pages.post("/pipelines", {"layer": "silver", "name": name}, token=False)
    assert refused.status_code == 403
    refused_htmx = pages.post("/pipelines", {"layer": "silver", "name": name}, htmx=True,
                              token=False)
    assert refused_htmx.status_code == 403
    created = pages.post("/pipelines", {"layer": "silver", "name": name})
    assert created.status_code == 303
    assert created.headers["location"] == f"/pipelines/default/silver/{name}?tab=code"


def test_cross_site_form_post_is_refused_even_with_a_token(pages: PageClient) -> None:
    pages.get("/pipelines")
    resp = pages.http.post("/pipelines", data={"layer": "silver", "name": unique("x"),
                                               "_csrf_token": pages.token},
                           headers={"Origin": "https://evil.example"})
    assert resp.status_code == 403


def test_bad_pipeline_name_shows_inline_error_and_keeps_input(pages: PageClient) -> None:
    typed = 'Bad Name <b>"x"'
    resp = pages.post("/pipelines", {"layer": "gold", "name": typed, "description": "kept"},
                      htmx=True)
    assert resp.status_code == 422
    assert resp.text.lstrip().startswith('<section id="new-pipeline"')
    assert 'value="Bad Name &lt;b&gt;&#34;x&#34;"' in resp.text
    assert 'value="kept"' in resp.text
    assert "name must match" in resp.text
    assert 'role="alert"' in resp.text
    assert '<option value="gold" selected>' in resp.text
    no_js = pages.post("/pipelines", {"layer": "gold", "name": typed})
    assert no_js.status_code == 422
    assert "<html" in no_js.text
    assert "<dialog id=\"new-pipeline-dialog\"" in no_js.text
    assert "name must match" in no_js.text


def test_duplicate_pipeline_is_an_inline_error(pages: PageClient) -> None:
    name = _pipeline(pages)
    resp = pages.post("/pipelines", {"layer": "silver", "name": name}, htmx=True)
    assert resp.status_code == 422
    assert "already exists" in resp.text
    assert f'value="{name}"' in resp.text


def test_strategy_form_validates_before_writing_config(pages: PageClient) -> None:
    name = _pipeline(pages)
    base = f"/pipelines/default/silver/{name}"
    with pages.api() as api:
        before = api.get(f"/files/default/pipelines/silver/{name}/config.yaml").json()["content"]
        bad = pages.post(f"{base}/settings/strategy",
                         {"merge_strategy": "incremental", "unique_key": "", "max_retries": "99"},
                         htmx=True)
        assert bad.status_code == 422
        assert bad.text.lstrip().startswith('<form id="strategy-form"')
        assert "requires unique_key" in bad.text
        assert "max_retries must be" in bad.text
        assert 'value="99"' in bad.text
        assert '<option value="incremental" selected>' in bad.text
        after = api.get(f"/files/default/pipelines/silver/{name}/config.yaml").json()["content"]
        assert after == before
        good = pages.post(f"{base}/settings/strategy",
                          {"merge_strategy": "incremental", "unique_key": "id, region",
                           "max_retries": "2"}, htmx=True)
        assert good.status_code == 200, good.text
        assert "saved to config.yaml" in good.text
        text = api.get(f"/files/default/pipelines/silver/{name}/config.yaml").json()["content"]
    assert text.startswith("# Pipeline settings.")  # the starter comment survives
    assert 'merge_strategy: "incremental"' in text
    assert 'unique_key: ["id","region"]' in text
    assert "max_retries: 2" in text


def test_save_file_without_javascript_redirects_back(pages: PageClient) -> None:
    name = _pipeline(pages)
    base = f"/pipelines/default/silver/{name}"
    pages.get(f"{base}?tab=code")
    resp = pages.post(f"{base}/files", {"path": "pipeline.sql", "content": "SELECT 2 AS id"})
    assert resp.status_code == 303
    assert resp.headers["location"] == f"{base}?tab=code&file=pipeline.sql"
    page = pages.get(resp.headers["location"])
    assert "SELECT 2 AS id" in page.text


def test_save_with_htmx_updates_status_and_draft_badge(pages: PageClient) -> None:
    name = _pipeline(pages)
    base = f"/pipelines/default/silver/{name}"
    resp = pages.post(f"{base}/files", {"path": "pipeline.sql", "content": "SELECT 3 AS id"},
                      htmx=True)
    assert resp.status_code == 200
    assert resp.text.lstrip().startswith('<span id="save-status"')
    assert "saved" in resp.text
    assert 'id="pipeline-badges" class="badges" hx-swap-oob="true"' in resp.text
    bad = pages.post(f"{base}/files", {"path": "../escape.sql", "content": "x"}, htmx=True)
    assert bad.status_code == 422
    assert "field-error" in bad.text


def test_console_refusal_is_shown_and_sql_kept(pages: PageClient) -> None:
    sql = "DROP TABLE silver.x"
    resp = pages.post("/query", {"sql": sql, "namespace": "default", "limit": "10"}, htmx=True)
    assert resp.status_code == 422
    assert resp.text.lstrip().startswith('<section id="query-results"')
    assert 'role="alert"' in resp.text
    no_js = pages.post("/query", {"sql": sql, "namespace": "default", "limit": "10"})
    assert no_js.status_code == 422
    assert f">{sql}</textarea>" in no_js.text


def test_console_shows_typed_grid(pages: PageClient) -> None:
    resp = pages.post("/query", {"sql": "SELECT 42 AS answer, NULL AS nothing, [1, 2] AS xs",
                                 "namespace": "default", "limit": "10"}, htmx=True)
    assert resp.status_code == 200, resp.text
    assert "INTEGER" in resp.text
    assert "answer" in resp.text
    assert '<td class="mono">42</td>' in resp.text
    assert '<td class="mono null">NULL</td>' in resp.text
    assert "[1,2]" in resp.text


def test_run_status_block_polls_only_while_active(pages: PageClient) -> None:
    name = _pipeline(pages)
    resp = pages.post(f"/pipelines/default/silver/{name}/run", {})
    assert resp.status_code == 303
    run_id = resp.headers["location"].rsplit("/", 1)[1]
    with pages.api() as api:
        run = wait_run(api, run_id)
    assert run["status"] == "success"
    block = pages.get(f"/runs/{run_id}", htmx=True)
    assert block.text.lstrip().startswith('<section id="run-status"')
    assert "hx-trigger" not in block.text
    assert "Re-run" in block.text
    full = pages.get(f"/runs/{run_id}")
    assert "data-stream" not in full.text
    assert "published" in full.text
    rerun = pages.post(f"/runs/{run_id}/rerun", {})
    assert rerun.status_code == 303
    assert rerun.headers["location"] != f"/runs/{run_id}"


def test_cancel_of_finished_run_is_a_conflict_toast(pages: PageClient) -> None:
    name = _pipeline(pages)
    with pages.api() as api:
        run_id = api.post("/runs", json={"namespace": "default", "layer": "silver",
                                         "pipeline": name}).json()["run_id"]
        wait_run(api, run_id)
    resp = pages.post(f"/runs/{run_id}/cancel", {}, htmx=True)
    assert resp.status_code == 409
    assert "toast-error" in resp.text
    assert "cannot be cancelled" in resp.text


def test_unknown_tab_and_pipeline_are_errors_not_500(pages: PageClient) -> None:
    name = _pipeline(pages)
    assert pages.get(f"/pipelines/default/silver/{name}?tab=nope").status_code == 400
    missing = pages.get("/pipelines/default/silver/does-not-exist")
    assert missing.status_code == 404
    assert "not found" in missing.text
    assert pages.get(f"/pipelines/default/silver/{name}?tab=code&file=nope.sql"
                     ).status_code == 404


@pytest.mark.parametrize("tab", ["overview", "code", "settings"])
def test_pipeline_tabs_render(pages: PageClient, tab: str) -> None:
    name = _pipeline(pages)
    resp = pages.get(f"/pipelines/default/silver/{name}?tab={tab}")
    assert resp.status_code == 200
    assert f'href="/pipelines/default/silver/{name}?tab={tab}" class="active"' in resp.text


def test_delete_pipeline_needs_its_name(pages: PageClient) -> None:
    name = _pipeline(pages)
    base = f"/pipelines/default/silver/{name}"
    wrong = pages.post(f"{base}/delete", {"confirm": "nope"}, htmx=True)
    assert wrong.status_code == 422
    assert "to confirm" in wrong.text
    ok = pages.post(f"{base}/delete", {"confirm": name})
    assert ok.status_code == 303
    assert ok.headers["location"] == "/pipelines"
    with pages.api() as api:
        assert api.get(f"/pipelines/default/silver/{name}").status_code == 404


def test_json_twin_links_point_at_the_api(pages: PageClient) -> None:
    name = _pipeline(pages)
    page = pages.get(f"/pipelines/default/silver/{name}")
    assert f'href="/api/v1/pipelines/default/silver/{name}"' in page.text
    assert httpx.get(str(pages.http.base_url) + f"/api/v1/pipelines/default/silver/{name}"
                     ).json()["name"] == name


def test_runs_filter_bad_date_is_inline_and_kept(pages: PageClient) -> None:
    resp = pages.get("/runs?since=yesterday&pipeline=abc", htmx=True)
    assert resp.status_code == 422
    assert "started_after must be" in resp.text
    full = pages.get("/runs?since=yesterday&pipeline=abc")
    assert 'value="yesterday"' in full.text
    assert 'value="abc"' in full.text
    ok = pages.get("/runs?since=2020-01-01&status=success")
    assert ok.status_code == 200


def test_description_and_owner_are_separate_forms(pages: PageClient) -> None:
    name = _pipeline(pages)
    base = f"/pipelines/default/silver/{name}"
    desc = pages.post(f"{base}/settings/description", {"description": "Orders <3"}, htmx=True)
    assert desc.status_code == 200
    assert desc.text.lstrip().startswith('<form id="description-form"')
    assert "Orders &lt;3" in desc.text
    too_long = pages.post(f"{base}/settings/description", {"description": "x" * 5001}, htmx=True)
    assert too_long.status_code == 422
    owner = pages.post(f"{base}/settings/owner", {"owner": "ann"}, htmx=True)
    assert owner.status_code == 200
    with pages.api() as api:
        got = api.get(f"{base}").json()
    assert got["description"] == "Orders <3"
    assert got["owner"] == "ann"
