"""Headless Chromium (Debian's `chromium`, driven by Playwright) against a real, empty `rat serve`.

Every page a test opens is watched: console errors, uncaught exceptions, dialogs and requests to
any origin other than the server are collected, and `Watch.assert_clean()` fails the test on any.
Screenshots go to tests/artifacts/screenshots/.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.conftest import ARTIFACTS, RatServer, start_server

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = ARTIFACTS / "screenshots"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def playwright(template_db: str) -> Iterator[Playwright]:
    """Playwright's sync API keeps an event loop running in this thread while it is started:
    the async database fixtures must be set up before (hence `template_db` here), and it stops
    after each module so async tests that run later get a free thread."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (make browser)")
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture(scope="module")
def fresh_server(pg_base: str, template_db: str) -> Iterator[RatServer]:
    """An empty RAT (new database, new data dir) for one test module. Started from a thread:
    `start_server` runs asyncio, which cannot nest in Playwright's running loop."""
    with ThreadPoolExecutor(1) as pool:
        server = pool.submit(start_server, pg_base, template_db, "local", None).result()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Watch:
    """Everything suspicious a page did: the browser-side half of the XSS and CSP checks."""

    origin: str
    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    confirms: int = 0  # confirmations the test is about to trigger on purpose (accepted)

    def attach(self, context: BrowserContext) -> None:
        context.on("request", self._request)
        context.on("page", self.attach_page)

    def attach_page(self, page: Page) -> None:
        page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("dialog", self._dialog)

    def _dialog(self, dialog: object) -> None:
        if getattr(dialog, "type", "") == "confirm" and self.confirms > 0:
            self.confirms -= 1
            dialog.accept()  # type: ignore[attr-defined]
            return
        self.dialogs.append(getattr(dialog, "message", "?"))
        dialog.dismiss()  # type: ignore[attr-defined]

    def _request(self, request: object) -> None:
        url = str(getattr(request, "url", ""))
        self.requests.append(f"{getattr(request, 'method', '?')} {url}")
        if not url.startswith((self.origin, "data:", "blob:", "about:")):
            self.foreign.append(url)

    def assert_clean(self, *, allow_errors: tuple[str, ...] = ()) -> None:
        # A 422 is how a form answers bad input (re-rendered with the error); Chromium still logs
        # every 4xx response as a console error.
        allowed = ("status of 422", *allow_errors)
        errors = [e for e in self.errors if not any(a in e for a in allowed)]
        assert not errors, errors
        assert not self.dialogs, self.dialogs
        assert not self.foreign, self.foreign


@pytest.fixture
def watch(fresh_server: RatServer) -> Watch:
    return Watch(origin=fresh_server.url)


@pytest.fixture
def page(browser: Browser, fresh_server: RatServer, watch: Watch) -> Iterator[Page]:
    context = browser.new_context(base_url=fresh_server.url,
                                  viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    watch.attach(context)
    pg = context.new_page()
    try:
        yield pg
    finally:
        context.close()


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
