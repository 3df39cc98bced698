"""A browser-like HTTP client for the pages: keeps cookies, reads the CSRF token from the page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RatServer

_TOKEN = re.compile(r'name="_csrf_token" value="([^"]+)"|"x-csrftoken": "([^"]+)"')


class PageClient:
    """Talks to the UI like a browser without JavaScript (form posts) or like htmx (headers)."""

    def __init__(self, server: RatServer) -> None:
        self.http = httpx.Client(base_url=server.url, timeout=60, follow_redirects=False,
                                 headers={"Accept": "text/html"})
        self.token = ""

    def get(self, path: str, *, htmx: bool = False, **kw: object) -> httpx.Response:
        resp = self.http.get(path, headers={"HX-Request": "true"} if htmx else None, **kw)  # type: ignore[arg-type]
        found = _TOKEN.search(resp.text)
        if found:
            self.token = found.group(1) or found.group(2)
        return resp

    def post(self, path: str, data: dict[str, str], *, htmx: bool = False,
             token: bool = True) -> httpx.Response:
        if not self.token:
            self.get("/")
        headers = {"HX-Request": "true", "x-csrftoken": self.token} if htmx and token else \
            {"HX-Request": "true"} if htmx else {}
        form = {**data, "_csrf_token": self.token} if token and not htmx else data
        return self.http.post(path, data=form, headers=headers)

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=str(self.http.base_url) + "/api/v1", timeout=60)


@pytest.fixture
def pages(local_server: RatServer) -> Iterator[PageClient]:
    client = PageClient(local_server)
    try:
        yield client
    finally:
        client.http.close()
