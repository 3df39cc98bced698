"""Steps a person does in the UI, shared by the browser tests."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect


def set_editor(page: Page, text: str, selector: str = ".cm-content") -> None:
    """Replace the CodeMirror document the way a user would: focus, select all, type."""
    editor = page.locator(selector).first
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def create_pipeline(page: Page, layer: str, name: str, *, description: str = "") -> None:
    page.goto("/pipelines")
    page.get_by_role("button", name="New pipeline").click()
    dialog = page.locator("#new-pipeline")
    dialog.locator("select[name=layer]").select_option(layer)
    dialog.locator("input[name=name]").fill(name)
    if description:
        dialog.locator("input[name=description]").fill(description)
    dialog.get_by_role("button", name="Create pipeline").click()
    expect(page).to_have_url(re.compile(rf"/pipelines/default/{layer}/{name}\?tab=code"))


def save_code(page: Page, sql: str) -> None:
    set_editor(page, sql)
    page.keyboard.press("Control+S")
    expect(page.locator("#save-status")).to_contain_text("saved")


def run_and_wait(page: Page, timeout: float = 60_000) -> None:
    """Press Run on a pipeline page, land on the run page and follow it until success."""
    page.get_by_role("button", name=re.compile("Run")).first.click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}$"))
    expect(page.locator("#run-status .badge").first).to_have_text("success", timeout=timeout)
