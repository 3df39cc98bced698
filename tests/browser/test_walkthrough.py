"""A new user's path in the browser alone, from an empty RAT: create, edit, save, run, watch the
live log, query the table. Screenshots of each main page are saved on the way."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch, screenshot
from tests.browser.helpers import create_pipeline, run_and_wait, save_code, set_editor

SILVER_SQL = """-- @merge_strategy: full_refresh
SELECT * FROM (VALUES (1, 'ann', 10.50), (2, 'bob', 20.25), (3, 'ann', 7.00))
    AS t(order_id, customer, amount)"""
GOLD_SQL = """SELECT customer, sum(amount) AS revenue, count(*) AS orders
FROM {{ ref('silver.orders') }}
GROUP BY customer"""


def test_new_user_builds_and_queries_tables(page: Page, watch: Watch) -> None:
    page.goto("/")
    expect(page.get_by_role("heading", name="Build your first pipeline")).to_be_visible()
    screenshot(page, "dashboard-empty")

    create_pipeline(page, "silver", "orders", description="Orders, cleaned")
    save_code(page, SILVER_SQL)
    screenshot(page, "pipeline-code")
    run_and_wait(page)
    expect(page.locator("#run-log")).to_contain_text("rows")
    screenshot(page, "run-detail")

    create_pipeline(page, "gold", "revenue")
    save_code(page, GOLD_SQL)
    run_and_wait(page)

    page.goto("/query")
    set_editor(page, "SELECT customer, revenue FROM gold.revenue ORDER BY customer")
    page.keyboard.press("Control+Enter")
    grid = page.locator("#query-results table")
    expect(grid).to_contain_text("ann")
    expect(grid.locator("tbody tr")).to_have_count(2)
    expect(grid.locator("tbody tr").first).to_contain_text("17.5")
    screenshot(page, "query")

    for path, name in (("/", "dashboard"), ("/pipelines", "pipelines"), ("/runs", "runs"),
                       ("/explorer", "explorer"), ("/settings", "settings"),
                       ("/explorer/default/silver/orders", "explorer-table"),
                       ("/lineage", "lineage"), ("/settings/plugins", "settings-plugins"),
                       ("/pipelines/default/silver/orders", "pipeline-overview"),
                       ("/pipelines/default/silver/orders?tab=settings", "pipeline-settings")):
        page.goto(path)
        expect(page.locator("h1")).to_be_visible()
        screenshot(page, name)
    expect(page.locator("body")).not_to_contain_text("internal error")
    assert re.search(r"silver\.orders", page.content())
    watch.assert_clean()
