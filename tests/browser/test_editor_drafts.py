"""Unsaved editor edits are never lost silently (issue 12, item 1): a dirty marker on the file and
the tab, a prompt before leaving, and the draft kept per file across a tab switch."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.browser.conftest import Watch
from tests.browser.helpers import create_pipeline, save_code, set_editor

SAVED = "SELECT 1 AS id"
EDITED = "SELECT 2 AS id -- not saved yet"


def test_unsaved_edits_are_marked_prompted_and_kept(page: Page, watch: Watch) -> None:
    create_pipeline(page, "bronze", "drafts")
    save_code(page, SAVED)
    tab = page.locator("nav.tabs a", has_text="code")
    file_link = page.locator(".file-tree li.active a")
    expect(tab).not_to_have_class(re.compile("dirty"))
    set_editor(page, EDITED)
    expect(tab).to_have_class(re.compile("dirty"))
    expect(file_link).to_have_class(re.compile("dirty"))

    # Leaving through a nav link asks first; dismissing the prompt keeps the page and the edit.
    page.locator(".topbar nav a", has_text="Runs").click()
    expect(page).to_have_url(re.compile(r"tab=code"))
    assert watch.dialogs
    assert "unsaved" in watch.dialogs[0].lower()
    watch.dialogs.clear()
    expect(page.locator(".cm-content")).to_contain_text("not saved yet")

    # Accepting it leaves; coming back restores the draft, said so, still marked dirty.
    watch.confirms = 1
    page.locator("nav.tabs a", has_text="overview").click()
    expect(page).to_have_url(re.compile(r"tab=overview"))
    page.locator("nav.tabs a", has_text="code").click()
    expect(page.locator(".cm-content")).to_contain_text("not saved yet")
    expect(page.locator("#draft-note")).to_contain_text("unsaved draft restored")
    expect(page.locator("nav.tabs a", has_text="code")).to_have_class(re.compile("dirty"))

    # A reload or a closed tab gets the browser's own beforeunload prompt.
    assert page.evaluate("""() => {
        const e = new Event('beforeunload', {cancelable: true});
        window.dispatchEvent(e);
        return e.defaultPrevented;
    }""")

    # Saving clears the marker and the stored draft: nothing to restore next time.
    page.locator(".cm-content").click()
    page.keyboard.press("Control+S")
    expect(page.locator("#save-status")).to_contain_text("saved")
    expect(page.locator("nav.tabs a", has_text="code")).not_to_have_class(re.compile("dirty"))
    expect(page.locator("#draft-note")).to_be_hidden()
    page.locator("nav.tabs a", has_text="overview").click()
    page.locator("nav.tabs a", has_text="code").click()
    expect(page.locator(".cm-content")).to_contain_text("not saved yet")
    expect(page.locator("#draft-note")).to_be_hidden()

    # A restored draft can be thrown away: back to the saved text, nothing marked.
    set_editor(page, "SELECT 3 AS id")
    watch.confirms = 1
    page.locator("nav.tabs a", has_text="overview").click()
    page.locator("nav.tabs a", has_text="code").click()
    page.locator("#draft-note").get_by_role("button", name="discard it").click()
    expect(page.locator(".cm-content")).to_contain_text("not saved yet")
    expect(page.locator("nav.tabs a", has_text="code")).not_to_have_class(re.compile("dirty"))
    expect(page.locator("#draft-note")).to_be_hidden()
    watch.assert_clean()
