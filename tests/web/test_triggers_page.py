"""The triggers tab over HTTP: all six trigger forms, editing schedules and triggers in place
(bad values re-render that form with the error and what was typed), enable/disable, rotation,
and the zone page listing the triggers that watch it."""

from __future__ import annotations

import re

import httpx

from tests.conftest import unique
from tests.web.conftest import PageClient


def _pipelines(pages: PageClient, *names: tuple[str, str]) -> None:
    with pages.api() as api:
        for layer, name in names:
            api.post("/pipelines", json={"namespace": "default", "layer": layer,
                                         "name": name}).raise_for_status()


def _triggers(pages: PageClient, base: str) -> list[dict[str, object]]:
    with pages.api() as api:
        body = api.get(f"{base}/triggers").json()
    return sorted(body["triggers"], key=lambda t: str(t["type"]))


def test_every_trigger_type_from_its_form(pages: PageClient) -> None:
    up, me, zone = unique("up"), unique("me"), unique("zone")
    _pipelines(pages, ("bronze", up), ("silver", me))
    with pages.api() as api:
        api.post("/landing-zones", json={"name": zone}).raise_for_status()
    base = f"/pipelines/default/silver/{me}"
    forms = [{"type": "landing_zone_upload", "zone_name": zone},
             {"type": "file_pattern", "zone_name": zone, "pattern": "orders_*.csv"},
             {"type": "pipeline_success", "layer": "bronze", "pipeline": up,
              "cooldown_seconds": "30"},
             {"type": "cron", "cron_expr": "*/15 * * * *", "timezone": "Europe/Paris"},
             {"type": "cron_dependency", "cron_expr": "@daily", "dependencies": f"bronze.{up}",
              "mode": "any"},
             {"type": "webhook"}]
    for form in forms:
        resp = pages.post(f"{base}/triggers", form, htmx=True)
        assert resp.status_code == 200, resp.text
        assert resp.text.lstrip().startswith('<section id="triggers"')
    got = {t["type"]: t for t in _triggers(pages, f"/pipelines/default/silver/{me}")}
    assert got["file_pattern"]["config"] == {"namespace": "default", "zone_name": zone,
                                             "pattern": "orders_*.csv"}
    assert got["pipeline_success"]["cooldown_seconds"] == 30
    assert got["cron"]["config"] == {"cron_expr": "*/15 * * * *", "timezone": "Europe/Paris"}
    assert got["cron_dependency"]["config"]["dependencies"] == [f"default.bronze.{up}"]
    assert got["cron_dependency"]["config"]["mode"] == "any"
    page = pages.get(f"{base}?tab=triggers").text
    assert "orders_*.csv" in page
    assert f"bronze.{up}" in page
    assert 'value="bronze.' + up + '"' in page  # the dependency edit form shows layer.name
    zone_page = pages.get(f"/landing/default/{zone}").text
    assert zone_page.count(f"silver.{me}") == 2  # upload and file-pattern triggers


def test_bad_trigger_config_keeps_the_typed_values(pages: PageClient) -> None:
    me = unique("bad")
    _pipelines(pages, ("gold", me))
    base = f"/pipelines/default/gold/{me}"
    cases = [({"type": "cron", "cron_expr": "every monday", "timezone": "UTC"}, "every monday"),
             ({"type": "cron", "cron_expr": "0 * * * *", "timezone": "Mars/Olympus"},
              "Mars/Olympus"),
             ({"type": "pipeline_success", "layer": "gold", "pipeline": me}, "own pipeline"),
             ({"type": "cron_dependency", "cron_expr": "@daily", "dependencies": "silver.nope"},
              "does not exist"),
             ({"type": "landing_zone_upload", "zone_name": "Bad Zone"}, "Bad Zone"),
             ({"type": "webhook", "cooldown_seconds": "soon"}, "cooldown_seconds")]
    for form, expected in cases:
        resp = pages.post(f"{base}/triggers", form, htmx=True)
        assert resp.status_code == 422, (form, resp.text)
        assert expected in resp.text, (form, resp.text)
        assert f'<input type="hidden" name="type" value="{form["type"]}">' in resp.text
        error = re.search(r'<p class="field-error wide" role="alert">([^<]*)</p>', resp.text)
        assert error, resp.text
    plain = pages.post(f"{base}/triggers", {"type": "cron", "cron_expr": "61 * * * *"})
    assert plain.status_code == 422  # without JavaScript: the whole page, error inline
    assert "<html" in plain.text
    assert 'value="61 * * * *"' in plain.text
    assert _triggers(pages, base) == []


def test_schedule_edit_in_place(pages: PageClient) -> None:
    me = unique("sched")
    _pipelines(pages, ("bronze", me))
    base = f"/pipelines/default/bronze/{me}"
    created = pages.post(f"{base}/schedules", {"cron": "0 3 * * *", "timezone": "UTC"})
    assert created.status_code == 303
    with pages.api() as api:
        (schedule,) = api.get(f"/schedules?pipeline={me}").json()["schedules"]
    sid = schedule["id"]
    bad = pages.post(f"{base}/schedules/{sid}", {"action": "save", "cron": "0 25 * * *",
                                                 "timezone": "UTC"}, htmx=True)
    assert bad.status_code == 422
    assert 'value="0 25 * * *"' in bad.text
    assert '<details class="row-edit" open>' in bad.text
    ok = pages.post(f"{base}/schedules/{sid}", {"action": "save", "cron": "30 4 * * *",
                                                "timezone": "Asia/Tokyo"}, htmx=True)
    assert ok.status_code == 200
    with pages.api() as api:
        got = api.get(f"/schedules/{sid}").json()
    assert (got["cron"], got["timezone"]) == ("30 4 * * *", "Asia/Tokyo")
    assert got["next_run_at"][14:16] == "30"
    assert got["next_run_at"][:16].replace("T", " ") in ok.text  # next run shown
    off = pages.post(f"{base}/schedules/{sid}", {"action": "disable"}, htmx=True)
    assert "disabled" in off.text
    gone = pages.post(f"{base}/schedules/{sid}", {"action": "delete"}, htmx=True)
    assert "No schedules" in gone.text
    other = unique("other")
    _pipelines(pages, ("bronze", other))
    with pages.api() as api:
        foreign = api.post("/schedules", json={"layer": "bronze", "pipeline": other,
                                               "cron": "@daily"}).json()["id"]
    assert pages.post(f"{base}/schedules/{foreign}", {"action": "delete"},
                      htmx=True).status_code == 404


def test_trigger_edit_enable_rotate_delete(pages: PageClient) -> None:
    me, zone = unique("edit"), unique("zone")
    _pipelines(pages, ("bronze", me))
    with pages.api() as api:
        api.post("/landing-zones", json={"name": zone}).raise_for_status()
    base = f"/pipelines/default/bronze/{me}"
    pages.post(f"{base}/triggers", {"type": "file_pattern", "zone_name": zone,
                                    "pattern": "*.csv"}, htmx=True)
    (trigger,) = _triggers(pages, base)
    url = f"{base}/triggers/{trigger['id']}"
    bad = pages.post(url, {"action": "save", "zone_name": zone, "pattern": "x" * 201,
                           "cooldown_seconds": "10"}, htmx=True)
    assert bad.status_code == 422
    assert "at most 200" in bad.text
    assert 'value="' + "x" * 201 + '"' in bad.text
    bad = pages.post(url, {"action": "save", "zone_name": zone, "pattern": "*.csv",
                           "cooldown_seconds": "-1"}, htmx=True)
    assert bad.status_code == 422
    assert 'value="-1"' in bad.text
    ok = pages.post(url, {"action": "save", "zone_name": zone, "pattern": "*.tsv",
                          "cooldown_seconds": "60"}, htmx=True)
    assert ok.status_code == 200
    (trigger,) = _triggers(pages, base)
    assert trigger["config"]["pattern"] == "*.tsv"
    assert trigger["cooldown_seconds"] == 60
    pages.post(url, {"action": "disable"}, htmx=True)
    assert _triggers(pages, base)[0]["enabled"] is False
    assert "disabled" in pages.get(f"/landing/default/{zone}").text
    pages.post(url, {"action": "enable"}, htmx=True)
    assert _triggers(pages, base)[0]["enabled"] is True
    assert pages.post(url, {"action": "rotate"}, htmx=True).status_code == 422  # not a webhook
    assert pages.post(f"{base}/triggers/{'0' * 8}-0000-0000-0000-{'0' * 12}", {"action": "delete"},
                      htmx=True).status_code == 404
    pages.post(url, {"action": "delete"}, htmx=True)
    assert _triggers(pages, base) == []


def test_webhook_token_once_and_rotation(pages: PageClient) -> None:
    me = unique("hook")
    _pipelines(pages, ("bronze", me))
    base = f"/pipelines/default/bronze/{me}"
    created = pages.post(f"{base}/triggers", {"type": "webhook"})  # no JavaScript: page, no 303
    assert created.status_code == 200
    first = re.search(r'id="webhook-token" [^>]*value="([0-9a-f]{64})"', created.text)
    assert first
    assert "X-Webhook-Token: " + first.group(1) in created.text
    assert first.group(1) not in pages.get(f"{base}?tab=triggers").text
    (trigger,) = _triggers(pages, base)
    rotated = pages.post(f"{base}/triggers/{trigger['id']}", {"action": "rotate"}, htmx=True)
    second = re.search(r'value="([0-9a-f]{64})"', rotated.text)
    assert second
    assert second.group(1) != first.group(1)
    hook = str(pages.http.base_url) + "/api/v1/webhooks"
    assert httpx.post(hook, headers={"X-Webhook-Token": first.group(1)}).status_code == 404
    assert httpx.post(hook, headers={"X-Webhook-Token": second.group(1)}).status_code == 201
    (trigger,) = _triggers(pages, base)
    assert trigger["last_run_id"]
    assert f'/runs/{trigger["last_run_id"]}' in pages.get(f"{base}?tab=triggers").text
