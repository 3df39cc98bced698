"""Small issue-12 fixes (item 13): the effective config speaks YAML/JSON (`false`, not Python's
`False`), and the create dialogs put the cursor in Name, the field everyone fills in."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch
from tests.browser.helpers import create_pipeline, save_code


def test_dialogs_focus_name(page: Page, watch: Watch) -> None:
    page.goto("/pipelines")
    page.get_by_role("button", name="New pipeline").click()
    expect(page.locator("#new-pipeline input[name=name]")).to_be_focused()
    page.goto("/landing")
    page.get_by_role("button", name="New zone").click()
    expect(page.locator("#new-zone input[name=name]")).to_be_focused()
    watch.assert_clean()


def test_effective_config_prints_json_values(page: Page, watch: Watch) -> None:
    create_pipeline(page, "bronze", "configured")
    save_code(page, "SELECT 1 AS id")
    page.get_by_role("button", name="Publish…").click()
    dialog = page.locator("#publish-dialog")
    dialog.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator("#publish-result")).to_contain_text("Published")
    page.goto("/pipelines/default/bronze/configured?tab=overview")
    config = page.locator(".panel", has_text="Effective config")
    expect(config).to_contain_text("archive_landing_zones")
    expect(config).to_contain_text("false")
    expect(config).not_to_contain_text("False")
    watch.assert_clean()
