"""The README's bronze → silver → gold walkthrough in the browser alone, from an empty RAT.

Land a CSV, load it (bronze), clean it (silver: edit, save, preview, publish with an error shown
at its line, then fixed, run, quality test), aggregate it (gold), query and download, explore,
see the lineage, then automate it with triggers so a new file flows to gold by itself.
A screenshot of each main page is saved on the way.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch, screenshot
from tests.browser.helpers import create_pipeline, run_and_wait, save_code, set_editor
from tests.browser.test_landing import create_zone, upload

ORDERS = "order_id,customer,amount,status\n1,ann,10.50,open\n2,bob,20.25,shipped\n3,ann,7.00,closed\n"
MORE = "order_id,customer,amount,status\n4,cy,5.00,open\n"
BRONZE = """SELECT order_id, customer, amount, status, current_date AS loaded_on
FROM read_csv_auto('{{ landing_zone("orders") }}')"""
SILVER = """-- @merge_strategy: incremental
-- @unique_key: order_id
SELECT order_id, lower(customer) AS customer, amount::DECIMAL(10, 2) AS amount, status
FROM {{ ref('bronze.orders') }}"""
GOLD = """SELECT customer, sum(amount) AS revenue, count(*) AS orders
FROM {{ ref('silver.orders') }}
GROUP BY customer"""
TEST = "-- @severity: error\nSELECT * FROM {{ this }} WHERE amount <= 0"


def _publish(page: Page, message: str) -> None:
    page.get_by_role("button", name="Publish…").click()
    dialog = page.locator("#publish-dialog")
    dialog.get_by_label("Message").fill(message)
    dialog.get_by_role("button", name="Publish", exact=True).click()


def _land_and_load(page: Page, tmp_path: Path) -> None:
    csv = tmp_path / "orders.csv"
    csv.write_text(ORDERS)
    page.goto("/")
    expect(page.get_by_role("heading", name="Build your first pipeline")).to_be_visible()
    screenshot(page, "dashboard-empty")
    create_zone(page, "orders")
    upload(page, csv)
    expect(page.locator("#zone-files")).to_contain_text("orders.csv")
    screenshot(page, "landing-zone-walkthrough")
    create_pipeline(page, "bronze", "orders")
    expect(page.locator(".cm-content")).to_contain_text('landing_zone("orders")')
    save_code(page, BRONZE)
    page.keyboard.press("Control+Enter")
    preview = page.locator("#preview-result")
    expect(preview.locator("table").first.locator("tbody tr")).to_have_count(3)
    expect(preview).to_contain_text("no sample files")  # preview read the live files instead
    screenshot(page, "pipeline-code")
    _publish(page, "load orders")
    expect(page.locator("#publish-result")).to_contain_text("Published v1")
    page.locator("#publish-dialog").get_by_role("button", name="Close").click()
    run_and_wait(page)
    expect(page.locator("#run-log")).to_contain_text("published 3 rows")
    screenshot(page, "run-detail")


def _silver(page: Page) -> None:
    create_pipeline(page, "silver", "orders")
    save_code(page, SILVER)
    page.keyboard.press("Control+Enter")
    preview = page.locator("#preview-result")
    expect(preview.locator("table").first).to_contain_text("ann")
    expect(preview.locator("table").first.locator("tbody tr")).to_have_count(3)
    save_code(page, SILVER.replace("order_id\nSELECT", "order_id\n-- @max_retries: 99\nSELECT"))
    _publish(page, "first cut")
    result = page.locator("#publish-result")
    expect(result).to_contain_text("Not published")
    expect(result.locator("li[data-line='3']")).to_contain_text("max_retries")
    page.locator("#publish-dialog").get_by_role("button", name="Close").click()
    expect(page.locator(".cm-lintRange-error")).to_have_count(1)  # at the line, in the editor
    save_code(page, SILVER)
    _publish(page, "clean orders")
    expect(result).to_contain_text("Published v1")
    page.locator("#publish-dialog").get_by_role("button", name="Close").click()
    expect(page.locator("#pipeline-badges")).to_contain_text("v1")
    run_and_wait(page)

    page.goto("/pipelines/default/silver/orders?tab=quality")
    form = page.locator("#test-form")
    form.locator("input[name=name]").fill("positive_amount")
    form.locator("input[name=description]").fill("amounts are positive")
    set_editor(page, TEST, "#test-form .cm-content")
    form.get_by_role("button", name="Create test").click()
    expect(page.locator("table").first).to_contain_text("positive_amount")
    page.get_by_role("button", name="Run tests now").click()
    expect(page.locator("#test-results")).to_contain_text("passed")
    screenshot(page, "pipeline-quality")


def _gold_query_explore(page: Page) -> None:
    create_pipeline(page, "gold", "revenue_by_customer")
    save_code(page, GOLD)
    run_and_wait(page)
    page.goto("/query")
    set_editor(page, "SELECT * FROM gold.revenue_by_customer ORDER BY revenue DESC")
    page.keyboard.press("Control+Enter")
    grid = page.locator("#query-results table")
    expect(grid.locator("tbody tr")).to_have_count(2)
    expect(grid.locator("tbody tr").first).to_contain_text("bob")
    screenshot(page, "query")
    with page.expect_download() as download:
        page.get_by_role("button", name="CSV").click()
    assert "bob" in Path(download.value.path()).read_text()
    page.goto("/explorer")
    page.get_by_role("link", name="silver.orders").click()
    expect(page.locator("#table-meta")).to_contain_text("customer")
    expect(page.locator("#table-preview tbody tr")).to_have_count(3)
    screenshot(page, "explorer-table")
    page.goto("/lineage")
    for label in ("orders", "bronze.orders", "silver.orders", "gold.revenue_by_customer"):
        expect(page.locator("svg.lineage").get_by_text(label, exact=True).first).to_be_visible()
    screenshot(page, "lineage")
    page.locator("svg.lineage a.kind-landing_zone").filter(has_text="orders").click()
    expect(page).to_have_url(re.compile(r"/landing/default/orders$"))
    page.goto("/lineage")
    page.locator("svg.lineage a.kind-pipeline").filter(has_text="gold.revenue").click()
    expect(page).to_have_url(re.compile(r"/pipelines/default/gold/revenue_by_customer$"))


def _automate(page: Page, tmp_path: Path) -> None:
    page.goto("/pipelines/default/silver/orders?tab=triggers")
    page.get_by_text("Another pipeline succeeds").click()
    form = page.locator("details[open] form")
    form.locator("select[name=layer]").select_option("bronze")
    form.locator("input[name=pipeline]").fill("orders")
    form.get_by_role("button", name="Add trigger").click()
    expect(page.locator("#triggers table")).to_contain_text("pipeline_success")
    page.goto("/pipelines/default/gold/revenue_by_customer?tab=triggers")
    page.get_by_text("Another pipeline succeeds").click()
    form = page.locator("details[open] form")
    form.locator("select[name=layer]").select_option("silver")
    form.locator("input[name=pipeline]").fill("orders")
    form.get_by_role("button", name="Add trigger").click()
    page.goto("/pipelines/default/bronze/orders?tab=triggers")
    page.get_by_text("A file lands in a zone").click()
    page.locator("details[open] form input[name=zone_name]").fill("orders")
    page.locator("details[open] form").get_by_role("button", name="Add trigger").click()
    expect(page.locator("#triggers table")).to_contain_text("landing_zone_upload")
    screenshot(page, "pipeline-triggers")
    more = tmp_path / "more.csv"
    more.write_text(MORE)
    page.goto("/landing/default/orders")
    expect(page.locator("#zone-triggers")).to_contain_text("bronze.orders")
    upload(page, more)
    expect(page.locator("#zone-files")).to_contain_text("more.csv")  # the upload finished
    page.goto("/runs")
    runs = page.locator("#runs-table")
    gold = runs.locator("tr", has_text="gold.revenue_by_customer").filter(
        has_text=re.compile("trigger:pipeline_success"))
    try:
        expect(gold.first).to_contain_text("success", timeout=90_000)
    except AssertionError:
        raise AssertionError(f"the chain did not reach gold: {_runs(page)}") from None
    screenshot(page, "runs")


def _runs(page: Page) -> list[tuple[str, str, str]]:
    body = page.request.get("/api/v1/runs?limit=20").json()
    return [(r["pipeline"], r["status"], r["trigger"]) for r in body["runs"]]


def test_readme_walkthrough_in_the_browser(page: Page, watch: Watch, tmp_path: Path) -> None:
    _land_and_load(page, tmp_path)
    _silver(page)
    _gold_query_explore(page)
    _automate(page, tmp_path)
    page.goto("/query")
    set_editor(page, "SELECT count(*) AS n FROM gold.revenue_by_customer")
    # A loaded machine may still be running a later hop of the chain: ask again until it lands.
    results = page.locator("#query-results tbody")
    for _ in range(30):
        page.keyboard.press("Control+Enter")
        try:
            expect(results).to_contain_text("3", timeout=2_000)
            break
        except AssertionError:
            continue
    expect(results).to_contain_text("3")
    for path, name in (("/", "dashboard"), ("/pipelines", "pipelines"), ("/landing", "landing"),
                       ("/explorer", "explorer"), ("/settings", "settings"),
                       ("/settings/retention", "settings-retention"),
                       ("/pipelines/default/silver/orders", "pipeline-overview"),
                       ("/pipelines/default/silver/orders?tab=versions", "pipeline-versions"),
                       ("/pipelines/default/silver/orders?tab=preview", "pipeline-preview"),
                       ("/pipelines/default/silver/orders?tab=settings", "pipeline-settings")):
        page.goto(path)
        expect(page.locator("h1")).to_be_visible()
        screenshot(page, name)
    watch.assert_clean()
