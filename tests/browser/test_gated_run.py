"""A run the quality gate blocks (issue 12, item 6): its rows were staged, never published, and
the pages say so instead of "Rows written 3"."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch
from tests.browser.helpers import create_pipeline, save_code, set_editor


def test_blocked_run_says_staged_not_published(page: Page, watch: Watch) -> None:
    create_pipeline(page, "bronze", "gated")
    save_code(page, "SELECT * FROM range(3) t(id)")
    page.goto("/pipelines/default/bronze/gated?tab=quality")
    form = page.locator("#test-form")
    form.locator("input[name=name]").fill("always_fails")
    set_editor(page, "-- @severity: error\nSELECT * FROM {{ this }}", "#test-form .cm-content")
    form.get_by_role("button", name="Create test").click()
    expect(page.locator("table").first).to_contain_text("always_fails")

    page.get_by_role("button", name=re.compile("Run")).first.click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    status = page.locator("#run-status")
    expect(status.locator(".badge").first).to_have_text("failed", timeout=60_000)
    expect(status).to_contain_text("quality gate failed")
    expect(status).to_contain_text("staged 3, not published")
    expect(status).not_to_contain_text("Rows written")

    page.goto("/runs")
    expect(page.locator("table tbody tr").first).to_contain_text("staged 3, not published")
    page.goto("/pipelines/default/bronze/gated")
    expect(page.locator("table tbody tr").first).to_contain_text("staged 3, not published")
    watch.assert_clean()
