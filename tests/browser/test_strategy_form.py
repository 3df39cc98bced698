"""The settings tab's strategy form and header annotations (issue 12, item 3): the form shows the
effective config, says which keys the annotations set (read-only there) and never writes a value
that contradicts them into config.yaml."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch
from tests.browser.helpers import create_pipeline, save_code

SQL = """-- @merge_strategy: incremental
-- @unique_key: order_id
SELECT 1 AS order_id, 'x' AS status"""


def test_strategy_form_shows_and_keeps_annotations(page: Page, watch: Watch) -> None:
    create_pipeline(page, "bronze", "annotated")
    save_code(page, SQL)
    page.locator("nav.tabs a", has_text="settings").click()
    form = page.locator("#strategy-form")
    strategy = form.locator("select[name=merge_strategy]")
    expect(strategy).to_have_value("incremental")
    expect(strategy).to_be_disabled()
    expect(form.locator("input[name=unique_key]")).to_have_value("order_id")
    expect(form.locator("input[name=unique_key]")).not_to_be_editable()
    expect(form).to_contain_text("@merge_strategy in pipeline.sql line 1")
    expect(form).to_contain_text("@unique_key in pipeline.sql line 2")
    expect(form.locator("[data-annotated=merge_strategy]")).to_contain_text(
        "its value full_refresh is ignored")

    # Saving the other keys leaves the annotated ones out of config.yaml.
    form.locator("input[name=watermark_column]").fill("updated_at")
    form.get_by_role("button", name="Save strategy").click()
    expect(form.locator(".ok")).to_contain_text("saved")
    expect(form.locator("select[name=merge_strategy]")).to_have_value("incremental")
    page.goto("/pipelines/default/bronze/annotated?tab=code&file=config.yaml")
    editor = page.locator(".cm-content")
    expect(editor).to_contain_text("watermark_column")
    expect(editor).to_contain_text("merge_strategy: full_refresh")  # the scaffold's, untouched
    expect(editor).not_to_contain_text("unique_key")
    watch.assert_clean()
