"""Landing zones in the browser: create, drag-and-drop/choose upload with progress, the file list
refreshes by itself, preview in a dialog, samples, lifecycle errors inline, delete."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch, screenshot

CSV = "order_id,customer,amount\n1,ann,10.50\n2,bob,20.25\n3,ann,7.00\n"


def create_zone(page: Page, name: str) -> None:
    page.goto("/landing")
    page.get_by_role("button", name="New zone").click()
    dialog = page.locator("#new-zone")
    dialog.locator("input[name=name]").fill(name)
    dialog.locator("input[name=description]").fill("raw orders")
    dialog.get_by_role("button", name="Create zone").click()
    expect(page).to_have_url(re.compile(rf"/landing/default/{name}$"))


def upload(page: Page, path: Path, form: str = "Files to upload") -> None:
    page.get_by_label(form).set_input_files(str(path))


def test_zone_upload_preview_and_samples(page: Page, watch: Watch, tmp_path: Path) -> None:
    csv = tmp_path / "orders.csv"
    csv.write_text(CSV)
    create_zone(page, "orders")
    upload(page, csv)
    files = page.locator("#zone-files")
    expect(files).to_contain_text("orders.csv")
    expect(page.locator("[data-upload-status]").first).to_contain_text("1 file uploaded")
    files.get_by_role("link", name="preview").first.click()
    dialog = page.locator("#preview-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.locator("table")).to_contain_text("ann")
    expect(dialog.locator("tbody tr")).to_have_count(3)
    screenshot(page, "landing-zone")
    dialog.get_by_role("button", name="Close preview").click()

    upload(page, csv, "Sample file")
    samples = page.locator("#zone-samples")
    expect(samples).to_contain_text("orders.csv")

    lifecycle = page.locator("#zone-lifecycle")
    lifecycle.locator("input[name=days]").fill("0")
    lifecycle.get_by_role("button", name="Save").click()
    expect(lifecycle.locator(".field-error")).to_be_visible()
    expect(lifecycle.locator("input[name=days]")).to_have_value("0")

    watch.confirms += 1
    files.get_by_role("button", name="delete").first.click()
    expect(page.locator("#zone-files")).to_contain_text("No files waiting")
    page.goto("/landing")
    expect(page.locator("#zones")).to_contain_text("default/orders")
    screenshot(page, "landing")
    watch.assert_clean()
