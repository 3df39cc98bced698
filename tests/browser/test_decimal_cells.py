"""DECIMAL cells keep their scale in every grid (issue 12, item 9): 10.50 is shown as 10.50 in
the pipeline preview, the query console and the explorer, not as the float 10.5."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch
from tests.browser.helpers import create_pipeline, run_and_wait, save_code, set_editor

SQL = ("SELECT 10.50::DECIMAL(10, 2) AS amount, 0::DECIMAL(12, 4) AS zero, "
       "{'price': 1.10::DECIMAL(5, 2)} AS nested, 0.5::DOUBLE AS ratio")
EXACT = ["10.50", "0.0000", '{"price":1.10}', "0.5"]


def _expect_row(row, values: list[str]) -> None:  # type: ignore[no-untyped-def]
    for i, text in enumerate(values):
        expect(row.locator("td").nth(i)).to_have_text(text)


def test_decimal_scale_is_kept_in_every_grid(page: Page, watch: Watch) -> None:
    create_pipeline(page, "bronze", "money")
    save_code(page, SQL)
    page.keyboard.press("Control+Enter")
    _expect_row(page.locator("#preview-result tbody tr").first, EXACT)
    run_and_wait(page)

    page.goto("/query")
    set_editor(page, "SELECT * FROM bronze.money")
    page.keyboard.press("Control+Enter")
    _expect_row(page.locator("#query-results tbody tr").first, EXACT)

    page.goto("/explorer/default/bronze/money")
    _expect_row(page.locator("#table-preview tbody tr").first, EXACT)
    watch.assert_clean()
