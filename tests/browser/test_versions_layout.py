"""The versions tab at a common laptop width (issue 12, item 2): Rollback must be reachable by a
real mouse click while a diff is shown next to the list."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from tests.browser.conftest import Watch, screenshot
from tests.browser.helpers import create_pipeline, save_code
from tests.conftest import RatServer


def _publish(page, message: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Publish…").click()
    dialog = page.locator("#publish-dialog")
    dialog.get_by_label("Message").fill(message)
    dialog.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator("#publish-result")).to_contain_text("Published")
    dialog.get_by_role("button", name="Close").click()


def test_rollback_is_clickable_beside_the_diff_at_1440(browser: Browser, fresh_server: RatServer,
                                                        watch: Watch) -> None:
    context = browser.new_context(base_url=fresh_server.url,
                                  viewport={"width": 1440, "height": 900})
    context.set_default_timeout(15_000)
    watch.attach(context)
    page = context.new_page()
    try:
        create_pipeline(page, "bronze", "versioned")
        save_code(page, "SELECT 1 AS id, 'a much longer first version of this line' AS label")
        _publish(page, "a first version with a fairly long message to widen the table")
        save_code(page, "SELECT 2 AS id, 'the second version of this long line' AS label")
        _publish(page, "second")
        page.goto("/pipelines/default/bronze/versioned?tab=versions&version=2")
        expect(page.locator("pre.diff").first).to_be_visible()
        row = page.locator("#versions-list tbody tr", has_text="v1")
        row.locator("summary", has_text="rollback").click()
        button = row.get_by_role("button", name="Roll back to v1")
        screenshot(page, "versions-rollback-1440")
        button.click(timeout=5_000)  # a real click: fails if anything covers the button
        expect(page).to_have_url(re.compile(r"tab=versions"))
        expect(page.locator("#versions-list tbody tr")).to_have_count(3)
        watch.assert_clean()
    finally:
        context.close()
