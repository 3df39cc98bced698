"""Pages over the landing, schedule/trigger and retention services."""

from __future__ import annotations

import re

import httpx

from tests.conftest import unique
from tests.web.conftest import PageClient

CSV = b"order_id,customer\n1,ann\n2,bob\n"


def test_landing_zone_forms_without_javascript(pages: PageClient) -> None:
    bad = pages.post("/landing", {"namespace": "default", "name": "Bad Zone", "description": "d"})
    assert bad.status_code == 422
    assert 'value="Bad Zone"' in bad.text
    assert "name must match" in bad.text
    zone = unique("z")
    created = pages.post("/landing", {"namespace": "default", "name": zone})
    assert created.status_code == 303
    page = pages.get(created.headers["location"])
    assert page.status_code == 200
    upload = pages.http.post(f"/landing/default/{zone}/files",
                             files={"file": ("orders.csv", CSV, "text/csv")},
                             data={"_csrf_token": pages.token})
    assert upload.status_code == 303, upload.text
    listing = pages.get(f"/landing/default/{zone}", htmx=True)
    assert listing.text.lstrip().startswith('<section id="zone-files"')
    assert "orders.csv" in listing.text
    file_id = re.search(r"/files/([0-9a-f-]{36})/preview", listing.text).group(1)  # type: ignore[union-attr]
    preview = pages.get(f"/landing/default/{zone}/files/{file_id}/preview", htmx=True)
    assert preview.text.lstrip().startswith('<section id="file-preview"')
    assert "ann" in preview.text
    lifecycle = pages.post(f"/landing/default/{zone}/lifecycle", {"days": "abc"}, htmx=True)
    assert lifecycle.status_code == 422
    assert 'value="abc"' in lifecycle.text


def test_schedule_and_trigger_forms(pages: PageClient) -> None:
    name = unique("tr")
    base = f"/pipelines/default/silver/{name}"
    with pages.api() as api:
        api.post("/pipelines", json={"namespace": "default", "layer": "silver",
                                     "name": name}).raise_for_status()
    bad = pages.post(f"{base}/schedules", {"cron": "every monday", "timezone": "UTC"}, htmx=True)
    assert bad.status_code == 422
    assert bad.text.lstrip().startswith('<section id="schedules"')
    assert 'value="every monday"' in bad.text
    assert 'role="alert"' in bad.text
    ok = pages.post(f"{base}/schedules", {"cron": "0 * * * *", "timezone": "UTC"}, htmx=True)
    assert ok.status_code == 200
    assert "0 * * * *" in ok.text
    bad_trigger = pages.post(f"{base}/triggers", {"type": "file_pattern", "zone_name": "nope",
                                                  "pattern": "*.csv"}, htmx=True)
    assert bad_trigger.status_code == 422
    assert 'value="nope"' in bad_trigger.text
    assert "<details class=\"trigger-form\" open>" in bad_trigger.text
    hook = pages.post(f"{base}/triggers", {"type": "webhook", "cooldown_seconds": "0"},
                      htmx=True)
    token = re.search(r'value="([0-9a-f]{64})"', hook.text)
    assert token, hook.text
    assert "shown once" in hook.text
    assert token.group(1) not in pages.get(f"{base}?tab=triggers").text
    fired = httpx.post(str(pages.http.base_url) + "/api/v1/webhooks",
                       headers={"X-Webhook-Token": token.group(1)})
    assert fired.status_code in (200, 201), fired.text


def test_retention_form_reports_every_bad_field(pages: PageClient) -> None:
    bad = pages.post("/settings/retention", {"runs_max_age_days": "0",
                                             "logs_max_age_days": "x", "runs_max_per_pipeline": "5"},
                     htmx=True)
    assert bad.status_code == 422
    assert bad.text.count('role="alert"') == 2
    assert 'value="x"' in bad.text
    ok = pages.post("/settings/retention", {"runs_max_per_pipeline": "150"}, htmx=True)
    assert ok.status_code == 200
    with pages.api() as api:
        assert api.get("/admin/retention/config").json()["config"]["runs_max_per_pipeline"] == 150


def _card(html: str, label: str) -> int:
    found = re.search(r'card-value[^>]*>(\d+)</div><div class="card-label">(?:<a [^>]*>)?'
                      + re.escape(label), html)
    assert found, label
    return int(found.group(1))


def test_dashboard_counts_match_the_api(pages: PageClient) -> None:
    zone = unique("dash")
    with pages.api() as api:
        api.post("/landing-zones", json={"name": zone}).raise_for_status()
        for n in range(2):
            api.post(f"/landing-zones/default/{zone}/files",
                     files={"file": (f"f{n}.csv", CSV, "text/csv")}).raise_for_status()
        zones = api.get("/landing-zones", params={"limit": 200}).json()
        pipelines = api.get("/pipelines", params={"limit": 1}).json()["total"]
        tables = api.get("/tables", params={"limit": 1}).json()["total"]
    html = pages.get("/").text
    assert _card(html, "landing files waiting") == sum(z["file_count"] for z in zones["zones"])
    assert _card(html, "pipelines") == pipelines
    assert _card(html, "tables") == tables
    assert "pending runs now" in html  # active runs whenever they started; finished in 24 h


def test_reaper_run_now_shows_the_pass(pages: PageClient) -> None:
    before = pages.get("/settings/retention").text
    assert "Run now" in before
    ran = pages.post("/settings/retention/run", {}, htmx=True)
    assert ran.status_code == 200
    assert ran.text.lstrip().startswith('<section id="reaper-status"')
    assert "never" not in ran.text.split("Last pass", 1)[1][:80]
    plain = pages.post("/settings/retention/run", {})
    assert plain.status_code == 303
    assert plain.headers["location"] == "/settings/retention"
