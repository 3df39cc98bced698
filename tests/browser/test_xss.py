"""Hostile strings in names, descriptions, cells, column names, file names, logs and DuckDB error
text: every page shows them as text, no script runs, no dialog opens, and no request is made that
the page itself did not intend (htmx gadgets stay inert)."""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch, screenshot
from tests.conftest import RatServer, unique, wait_run

MARK = "xss-probe"
PAYLOADS = [
    f'<img src="/{MARK}/img" onerror="alert(1)">',
    "<script>alert(2)</script>",
    f'<div hx-get="/api/v1/pipelines?{MARK}=hx" hx-trigger="load">gadget</div>',
    '<a href="javascript:alert(3)" hx-on:click="alert(4)">link</a>',
    '"><svg onload=alert(5)>',
]
HOSTILE = " ".join(PAYLOADS)
COLUMN = '<b onmouseover="alert(6)">col</b>'


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


HOSTILE_SQL = (f'SELECT {_lit(HOSTILE)} AS "{COLUMN.replace(chr(34), chr(34) * 2)}", 1 AS n '
               f"UNION ALL SELECT {_lit(PAYLOADS[2])}, 2")
TEST_FILE = "tests/quality/<svg onload=alert(7)>.sql"
LANDED = "<svg onload=alert(8)>.csv"
SAMPLE = "<img src=x onerror=alert(9)>.csv"
BAD_SQL = 'SELECT "' + PAYLOADS[0].replace('"', '""') + '" FROM range(1)'


@pytest.fixture(scope="module")
def hostile(fresh_server: RatServer) -> dict[str, str]:
    """A pipeline whose description, cells and column names are hostile, plus a failing one whose
    DuckDB error (shown as the run error and logged) echoes a hostile identifier."""
    api = httpx.Client(base_url=f"{fresh_server.url}/api/v1", timeout=60)
    good, bad = unique("hostile"), unique("broken")
    for name, layer, source in ((good, "bronze", HOSTILE_SQL), (bad, "silver", BAD_SQL)):
        resp = api.post("/pipelines", json={"namespace": "default", "layer": layer, "name": name,
                                            "source": source,
                                            "description": HOSTILE})
        assert resp.status_code == 201, resp.text
    published = api.post(f"/pipelines/default/bronze/{good}/publish", json={"message": HOSTILE})
    assert published.status_code == 200, published.text
    tests_path = quote(f"default/pipelines/bronze/{good}/{TEST_FILE}")
    resp = api.put(f"/files/{tests_path}", json={"content": f"-- {HOSTILE}\nSELECT 1 WHERE false"})
    assert resp.status_code == 200, resp.text
    runs = {}
    for name, layer in ((good, "bronze"), (bad, "silver")):
        run_id = api.post("/runs", json={"namespace": "default", "layer": layer,
                                         "pipeline": name}).json()["run_id"]
        runs[layer] = wait_run(api, run_id)["id"]  # type: ignore[assignment]
    assert api.get(f"/runs/{runs['silver']}").json()["status"] == "failed"
    _hostile_extras(api, good)
    api.close()
    return {"good": good, "bad": bad, "good_run": runs["bronze"], "bad_run": runs["silver"]}


def _hostile_extras(api: httpx.Client, good: str) -> None:
    """Hostile zone text and file name, test texts and column descriptions."""
    zone = {"namespace": "default", "name": "hostile", "description": HOSTILE,
            "expected_schema": HOSTILE}
    assert api.post("/landing-zones", json=zone).status_code == 201
    cell = _lit(HOSTILE).replace("'", '"')
    up = api.post("/landing-zones/default/hostile/files",
                  files={"file": (LANDED, f"a,b\n{cell},1\n".encode(), "text/csv")})
    assert up.status_code == 201, up.text
    sample = api.post("/landing-zones/default/hostile/samples",
                      files={"file": (SAMPLE, f"a,b\n{cell},2\n".encode(), "text/csv")})
    assert sample.status_code == 201, sample.text
    trigger = {"type": "file_pattern", "config": {"namespace": "default", "zone_name": "hostile",
                                                  "pattern": PAYLOADS[0]}}
    resp = api.post(f"/pipelines/default/bronze/{good}/triggers", json=trigger)
    assert resp.status_code == 201, resp.text
    test = {"name": "hostile_test", "sql": "SELECT 1 WHERE false", "description": HOSTILE,
            "remediation": HOSTILE, "tags": ["x"]}
    assert api.post(f"/pipelines/default/bronze/{good}/tests", json=test).status_code == 201
    meta = {"description": HOSTILE, "column_descriptions": {COLUMN: HOSTILE}}
    assert api.put(f"/tables/default/bronze/{good}/metadata", json=meta).status_code == 200


def _assert_inert(page: Page, watch: Watch) -> None:
    assert page.locator(f'img[src="/{MARK}/img"]').count() == 0
    assert page.locator("[hx-trigger=load], svg[onload], [onmouseover]").count() == 0
    assert page.locator("script:not([nonce])").count() == 0
    assert not [r for r in watch.requests if MARK in r], watch.requests
    watch.assert_clean()


def test_hostile_content_is_shown_as_text_everywhere(page: Page, watch: Watch,
                                                     hostile: dict[str, str]) -> None:
    good, bad = hostile["good"], hostile["bad"]
    visits = [("/", None), ("/pipelines", HOSTILE), ("/runs", None),
              (f"/pipelines/default/bronze/{good}", HOSTILE),
              (f"/pipelines/default/bronze/{good}?tab=code", None),
              (f"/pipelines/default/bronze/{good}?tab=code&file={quote(TEST_FILE)}", HOSTILE),
              (f"/pipelines/default/bronze/{good}?tab=settings", None),
              (f"/runs/{hostile['good_run']}", None),
              (f"/runs/{hostile['bad_run']}", PAYLOADS[0]),
              (f"/pipelines/default/silver/{bad}?tab=code", None),
              ("/explorer", None), ("/query", None), ("/settings", None),
              ("/landing", HOSTILE), ("/landing/default/hostile", LANDED),
              (f"/explorer/default/bronze/{good}", PAYLOADS[2]), ("/lineage", None),
              (f"/pipelines/default/bronze/{good}?tab=quality", HOSTILE),
              (f"/pipelines/default/bronze/{good}?tab=versions", HOSTILE),
              (f"/pipelines/default/bronze/{good}?tab=triggers", PAYLOADS[0]),
              (f"/pipelines/default/bronze/{good}?tab=preview", None),
              ("/settings/retention", None)]
    for path, visible in visits:
        page.goto(path)
        page.wait_for_load_state("networkidle")
        if visible:
            expect(page.get_by_text(visible, exact=False).first).to_be_visible()
        _assert_inert(page, watch)
    page.goto("/landing/default/hostile")
    expect(page.locator("#zone-samples")).to_contain_text(SAMPLE)
    expect(page.locator("#zone-triggers")).to_contain_text(PAYLOADS[0])
    page.locator("#zone-files").get_by_role("link", name="preview").first.click()
    expect(page.locator("#preview-dialog table")).to_contain_text(PAYLOADS[2])
    page.get_by_role("button", name="Close preview").click()
    page.locator("#zone-samples").get_by_role("link", name="preview").first.click()
    expect(page.locator("#preview-dialog h2")).to_contain_text(SAMPLE)
    expect(page.locator("#preview-dialog table")).to_contain_text(PAYLOADS[2])
    _assert_inert(page, watch)
    screenshot(page, "xss-landing-zone")
    page.goto(f"/pipelines/default/bronze/{good}?tab=preview")
    page.get_by_role("button", name="Preview the draft").click()
    expect(page.locator("#preview-result table").first).to_contain_text(PAYLOADS[2])
    page.wait_for_timeout(300)
    _assert_inert(page, watch)
    page.get_by_role("button", name="Publish…").click()
    page.locator("#publish-dialog").get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator("#publish-result .validation")).to_contain_text(TEST_FILE)
    _assert_inert(page, watch)
    page.goto(f"/runs/{hostile['bad_run']}")
    expect(page.locator(".run-error")).to_contain_text(PAYLOADS[0])
    expect(page.locator("#run-log .log-error").first).to_contain_text(PAYLOADS[0])
    screenshot(page, "xss-run-error")


def test_hostile_query_results_and_errors_stay_text(page: Page, watch: Watch,
                                                    hostile: dict[str, str]) -> None:
    page.goto("/query")
    editor = page.locator(".cm-content")
    editor.click()
    page.keyboard.insert_text(f"SELECT * FROM bronze.{hostile['good']}")
    page.keyboard.press("Control+Enter")
    grid = page.locator("#query-results table")
    expect(grid.locator("th").first).to_contain_text(COLUMN)
    expect(grid).to_contain_text(PAYLOADS[2])
    page.wait_for_timeout(500)  # a live gadget would have fired its request by now
    _assert_inert(page, watch)
    screenshot(page, "xss-query")

    page.keyboard.press("Control+A")
    page.keyboard.insert_text(BAD_SQL)
    page.keyboard.press("Control+Enter")
    expect(page.locator("#query-results pre.error-text")).to_contain_text(PAYLOADS[0])
    page.wait_for_timeout(300)
    _assert_inert(page, watch)


def test_hostile_form_input_is_echoed_escaped(page: Page, watch: Watch) -> None:
    page.goto("/pipelines")
    page.get_by_role("button", name="New pipeline").click()
    dialog = page.locator("#new-pipeline")
    dialog.locator("input[name=name]").fill(PAYLOADS[0])
    dialog.locator("input[name=description]").fill(HOSTILE)
    dialog.get_by_role("button", name="Create pipeline").click()
    expect(dialog.locator(".field-error")).to_contain_text("name must match")
    expect(dialog.locator("input[name=name]")).to_have_value(PAYLOADS[0])
    expect(dialog.locator("input[name=description]")).to_have_value(HOSTILE)
    assert re.search(r"/pipelines$", page.url)
    _assert_inert(page, watch)
    page.goto("/landing")
    page.get_by_role("button", name="New zone").click()
    zone = page.locator("#new-zone")
    zone.locator("input[name=name]").fill(PAYLOADS[4])
    zone.locator("textarea[name=expected_schema]").fill(HOSTILE)
    zone.get_by_role("button", name="Create zone").click()
    expect(zone.locator(".field-error")).to_contain_text("name must match")
    expect(zone.locator("input[name=name]")).to_have_value(PAYLOADS[4])
    expect(zone.locator("textarea[name=expected_schema]")).to_have_value(HOSTILE)
    _assert_inert(page, watch)


def test_hostile_trigger_input_is_echoed_escaped(page: Page, watch: Watch,
                                                 hostile: dict[str, str]) -> None:
    page.goto(f"/pipelines/default/bronze/{hostile['good']}?tab=triggers")
    page.get_by_text("On a cron schedule (trigger)").click()
    form = page.locator("details[open] form")
    form.locator("input[name=cron_expr]").fill(PAYLOADS[1])
    form.locator("input[name=timezone]").fill(PAYLOADS[3])
    form.get_by_role("button", name="Add trigger").click()
    form = page.locator("details[open] form")
    expect(form.locator(".field-error")).to_be_visible()
    expect(form.locator("input[name=cron_expr]")).to_have_value(PAYLOADS[1])
    expect(form.locator("input[name=timezone]")).to_have_value(PAYLOADS[3])
    page.get_by_text("On a cron schedule (trigger)").click()  # closes it
    page.locator("#schedules input[name=cron]").last.fill(PAYLOADS[4])
    page.get_by_role("button", name="Add schedule").click()
    expect(page.locator("#schedules .field-error")).to_contain_text(PAYLOADS[4].strip())
    expect(page.locator("#schedules input[name=cron]").last).to_have_value(PAYLOADS[4])
    _assert_inert(page, watch)
