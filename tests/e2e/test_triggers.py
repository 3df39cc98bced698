"""Triggers over HTTP: validation of every type, upload → bronze → silver chains, webhooks,
cron and cron_dependency firing, cooldowns and coalescing."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import httpx

from tests.conftest import RatServer, unique, wait_run
from tests.e2e.test_landing import CSV, make_zone, upload


def make_pipeline(client: httpx.Client, layer: str, source: str, name: str | None = None) -> str:
    name = name or unique(layer)
    resp = client.post("/pipelines", json={"namespace": "default", "layer": layer, "name": name,
                                           "source": source})
    assert resp.status_code == 201, resp.text
    return name


def triggers_url(layer: str, name: str) -> str:
    return f"/pipelines/default/{layer}/{name}/triggers"


def add_trigger(client: httpx.Client, layer: str, name: str, type_: str,
                config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    resp = client.post(triggers_url(layer, name), json={"type": type_, "config": config, **extra})
    assert resp.status_code == 201, resp.text
    return dict(resp.json())


def runs_of(client: httpx.Client, layer: str, name: str) -> list[dict[str, Any]]:
    return list(client.get("/runs", params={"layer": layer, "pipeline": name}).json()["runs"])


def wait_runs(client: httpx.Client, layer: str, name: str, count: int,
              timeout: float = 30) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = runs_of(client, layer, name)
        if len(runs) >= count and all(r["status"] in ("success", "failed") for r in runs):
            return runs
        time.sleep(0.1)
    raise AssertionError(f"expected {count} finished runs of {name}: {runs_of(client, layer, name)}")


def test_upload_fires_bronze_once_then_silver_on_success(rat_server: RatServer) -> None:
    with rat_server.client() as client:
        zone = make_zone(client)
        bronze = make_pipeline(client, "bronze", "SELECT id, name, amount FROM read_csv_auto("
                                                 f"'{{{{ landing_zone(\"{zone}\") }}}}')")
        silver = make_pipeline(client, "silver", "SELECT id, amount * 2 AS doubled FROM "
                                                 f"{{{{ ref('bronze.{bronze}') }}}}")
        up = add_trigger(client, "bronze", bronze, "landing_zone_upload",
                         {"namespace": "default", "zone_name": zone})
        add_trigger(client, "silver", silver, "pipeline_success",
                    {"namespace": "default", "layer": "bronze", "pipeline": bronze})
        assert upload(client, zone, "orders.csv", CSV).status_code == 201

        bronze_runs = wait_runs(client, "bronze", bronze, 1)
        silver_runs = wait_runs(client, "silver", silver, 1)
        assert [r["status"] for r in bronze_runs] == ["success"]
        assert bronze_runs[0]["trigger"] == f"trigger:landing_zone_upload:default/{zone}"
        assert [r["status"] for r in silver_runs] == ["success"]
        assert silver_runs[0]["trigger"] == f"trigger:pipeline_success:default/bronze/{bronze}"
        rows = client.post("/query", json={"sql": f"SELECT sum(doubled) AS s FROM silver.{silver}"})
        assert rows.json()["rows"] == [{"s": 75.5}]
        fired = client.get(f"{triggers_url('bronze', bronze)}/{up['id']}").json()
        assert fired["last_run_id"] == bronze_runs[0]["id"]
        assert fired["last_triggered_at"] is not None
        time.sleep(1.5)  # nothing else may fire: one file, one run each
        assert len(runs_of(client, "bronze", bronze)) == 1
        assert len(runs_of(client, "silver", silver)) == 1


def test_file_pattern_matches_original_name_and_burst_coalesces(api: httpx.Client) -> None:
    zone = make_zone(api)
    # the pipeline waits on a missing upstream table, so its runs fail fast but exist
    name = make_pipeline(api, "bronze", "SELECT 1 AS id")
    add_trigger(api, "bronze", name, "file_pattern",
                {"namespace": "default", "zone_name": zone, "pattern": "orders_*.csv"})
    assert upload(api, zone, "customers.csv", CSV).status_code == 201
    time.sleep(0.5)
    assert runs_of(api, "bronze", name) == []
    # A burst: every upload fires, all but the first join the same pending run (or the one
    # queued behind a running one); never one run per file.
    for i in range(5):
        assert upload(api, zone, f"orders_{i}.csv", CSV).status_code == 201
    runs = wait_runs(api, "bronze", name, 1)
    assert 1 <= len(runs) <= 2
    assert all(r["trigger"] == f"trigger:file_pattern:default/{zone}:orders_*.csv" for r in runs)


def test_webhook_token_wrong_token_cooldown(api: httpx.Client) -> None:
    name = make_pipeline(api, "gold", "SELECT 42 AS answer")
    hook = add_trigger(api, "gold", name, "webhook", {"ignored": True}, cooldown_seconds=30)
    token = hook["webhook_token"]
    assert len(token) == 64
    assert hook["config"] == {}
    assert hook["webhook_url"].endswith("/api/v1/webhooks")
    listed = api.get(triggers_url("gold", name)).json()["triggers"]
    assert "webhook_token" not in listed[0]
    assert token not in str(listed)

    fired = api.post("/webhooks", headers={"X-Webhook-Token": token})
    assert fired.status_code == 201, fired.text
    run = wait_run(api, fired.json()["run_id"])
    assert run["status"] == "success"
    assert run["trigger"] == f"trigger:webhook:{hashlib.sha256(token.encode()).hexdigest()[:8]}"

    cooling = api.post("/webhooks", headers={"Authorization": f"Bearer {token}"})
    assert cooling.status_code == 429
    assert 1 <= int(cooling.headers["retry-after"]) <= 30
    assert api.post("/webhooks", headers={"X-Webhook-Token": "f" * 64}).status_code == 404
    assert api.post("/webhooks").status_code == 400
    assert api.post(f"/webhooks?token={token}").status_code == 400

    rotated = api.post(f"{triggers_url('gold', name)}/{hook['id']}/rotate-token").json()
    assert rotated["webhook_token"] != token
    assert api.post("/webhooks", headers={"X-Webhook-Token": token}).status_code == 404
    api.put(f"{triggers_url('gold', name)}/{hook['id']}", json={"enabled": False})
    assert api.post("/webhooks", headers={"X-Webhook-Token": rotated["webhook_token"]}
                    ).status_code == 404


def test_webhook_coalesces_into_the_pending_run(api: httpx.Client) -> None:
    slow = make_pipeline(api, "gold", "SELECT count(*) AS n FROM range(300000000)")
    hook = add_trigger(api, "gold", slow, "webhook", {})
    headers = {"X-Webhook-Token": hook["webhook_token"]}
    first = api.post("/webhooks", headers=headers)
    assert first.status_code == 201
    deadline = time.monotonic() + 20
    while api.get(f"/runs/{first.json()['run_id']}").json()["status"] == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    second = api.post("/webhooks", headers=headers)  # first is running: a new pending run
    third = api.post("/webhooks", headers=headers)   # joins the pending one
    assert second.status_code == 201
    assert third.status_code == 200
    assert third.json() == {"run_id": second.json()["run_id"], "coalesced": True}
    for resp in (first, second):
        assert wait_run(api, resp.json()["run_id"])["status"] == "success"


def test_cron_trigger_fires_from_creation(api: httpx.Client) -> None:
    name = make_pipeline(api, "silver", "SELECT 1 AS x")
    trig = add_trigger(api, "silver", name, "cron", {"cron_expr": "*/2 * * * * *"})
    runs = wait_runs(api, "silver", name, 1, timeout=15)
    assert runs[-1]["trigger"] == "trigger:cron:*/2 * * * * *"
    api.put(f"{triggers_url('silver', name)}/{trig['id']}", json={"enabled": False})


def test_cron_dependency_waits_for_all_dependencies(api: httpx.Client) -> None:
    a = make_pipeline(api, "bronze", "SELECT 1 AS a")
    b = make_pipeline(api, "bronze", "SELECT 2 AS b")
    gold = make_pipeline(api, "gold", "SELECT 3 AS g")
    add_trigger(api, "gold", gold, "cron_dependency",
                {"cron_expr": "* * * * * *", "dependencies": [f"default.bronze.{a}",
                                                                f"default.bronze.{b}"]})
    time.sleep(2.5)  # armed at every second, but no dependency succeeded yet
    assert runs_of(api, "gold", gold) == []
    run_a = api.post("/runs", json={"namespace": "default", "layer": "bronze", "pipeline": a})
    assert wait_run(api, run_a.json()["run_id"])["status"] == "success"
    time.sleep(2.0)
    assert runs_of(api, "gold", gold) == []  # "all" still waits for b
    run_b = api.post("/runs", json={"namespace": "default", "layer": "bronze", "pipeline": b})
    assert wait_run(api, run_b.json()["run_id"])["status"] == "success"
    runs = wait_runs(api, "gold", gold, 1)
    assert runs[0]["trigger"] == "trigger:cron_dependency:* * * * * *"
    time.sleep(2.5)  # fired once; nothing succeeded since, so no second firing
    assert len(runs_of(api, "gold", gold)) == 1


def test_trigger_validation(api: httpx.Client) -> None:
    zone = make_zone(api)
    up = make_pipeline(api, "bronze", "SELECT 1 AS x")
    down = make_pipeline(api, "silver", "SELECT 1 AS x")
    url = triggers_url("silver", down)

    def create(type_: str, config: dict[str, Any], **extra: Any) -> httpx.Response:
        return api.post(url, json={"type": type_, "config": config, **extra})

    def refused(resp: httpx.Response, *words: str) -> None:
        assert resp.status_code == 400, resp.text
        message = resp.json()["error"]["message"]
        assert all(w in message for w in words), message

    refused(create("carrier_pigeon", {}), "type")
    refused(create("landing_zone_upload", {"namespace": "default"}), "config.zone_name")
    refused(create("landing_zone_upload", {"namespace": "default", "zone_name": "nope"}),
            "does not exist")
    refused(create("file_pattern", {"namespace": "default", "zone_name": zone}), "config.pattern")
    refused(create("file_pattern", {"namespace": "default", "zone_name": zone,
                                    "pattern": "x" * 201}), "config.pattern")
    refused(create("pipeline_success", {"namespace": "default", "layer": "bronze"}),
            "config.pipeline")
    refused(create("pipeline_success", {"namespace": "default", "layer": "bronze",
                                        "pipeline": "ghost"}), "does not exist")
    refused(create("pipeline_success", {"namespace": "default", "layer": "silver",
                                        "pipeline": down}), "own pipeline")
    refused(create("cron", {}), "config.cron_expr")
    refused(create("cron", {"cron_expr": "61 * * * *"}), "config.cron_expr")
    refused(create("cron", {"cron_expr": "* * * *"}), "config.cron_expr")
    refused(create("cron", {"cron_expr": "@daily", "timezone": "Mars/Olympus"}), "timezone")
    refused(create("cron_dependency", {"cron_expr": "@daily", "dependencies": []}),
            "config.dependencies")
    refused(create("cron_dependency", {"cron_expr": "@daily", "dependencies": ["bad"]}),
            "config.dependencies")
    refused(create("cron_dependency", {"cron_expr": "@daily", "mode": "some",
                                       "dependencies": [f"default.bronze.{up}"]}), "config.mode")
    refused(create("webhook", {}, cooldown_seconds=86401), "cooldown_seconds")
    assert create("cron", {"cron_expr": "@daily"}, cooldown_seconds="x").status_code == 400

    edge = create("pipeline_success", {"namespace": "default", "layer": "bronze", "pipeline": up})
    assert edge.status_code == 201
    refused(api.post(triggers_url("bronze", up), json={
        "type": "cron_dependency",
        "config": {"cron_expr": "@daily", "dependencies": [f"default.silver.{down}"]}}), "cycle")

    good = create("cron", {"cron_expr": "0 3 * * *", "timezone": "Europe/Paris", "extra": 1})
    assert good.status_code == 201
    assert good.json()["config"] == {"cron_expr": "0 3 * * *", "timezone": "Europe/Paris"}
    tid = good.json()["id"]
    refused(api.put(f"{url}/{tid}", json={"config": {"cron_expr": "bogus"}}), "config.cron_expr")
    updated = api.put(f"{url}/{tid}", json={"config": {"cron_expr": "@hourly"},
                                            "cooldown_seconds": 60, "enabled": False})
    assert updated.status_code == 200
    body = updated.json()
    assert (body["config"], body["cooldown_seconds"], body["enabled"]) == \
        ({"cron_expr": "@hourly"}, 60, False)
    assert api.post(f"{url}/{tid}/rotate-token").status_code == 400
    assert api.get(f"{url}/not-a-uuid").status_code == 400
    assert api.get(triggers_url("bronze", up) + f"/{tid}").status_code == 404
    assert api.delete(f"{url}/{tid}").status_code == 204
    assert api.get(f"{url}/{tid}").status_code == 404

    watcher = add_trigger(api, "silver", down, "landing_zone_upload",
                          {"namespace": "default", "zone_name": zone})
    assert api.delete(f"/landing-zones/default/{zone}").status_code == 204
    assert api.get(f"{url}/{watcher['id']}").status_code == 404
