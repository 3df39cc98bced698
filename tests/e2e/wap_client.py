"""Small HTTP helpers shared by the write-audit-publish end-to-end tests."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.conftest import wait_run


class PipelineClient:
    """One pipeline, driven only over the public API."""

    def __init__(self, client: httpx.Client, layer: str, name: str) -> None:
        self.client = client
        self.layer = layer
        self.name = name
        self.base = f"/pipelines/default/{layer}/{name}"
        self.prefix = f"default/pipelines/{layer}/{name}/"

    def create(self, source: str, pipeline_type: str = "sql") -> PipelineClient:
        resp = self.client.post("/pipelines", json={
            "namespace": "default", "layer": self.layer, "name": self.name, "source": source,
            "type": pipeline_type})
        assert resp.status_code == 201, resp.text
        return self

    def write(self, rel: str, content: str) -> None:
        resp = self.client.put(f"/files/{self.prefix}{rel}", json={"content": content})
        assert resp.status_code == 200, resp.text

    def start(self) -> str:
        resp = self.client.post("/runs", json={"namespace": "default", "layer": self.layer,
                                               "pipeline": self.name})
        assert resp.status_code == 202, resp.text
        return str(resp.json()["run_id"])

    def run(self, timeout: float = 90) -> dict[str, Any]:
        return wait_run(self.client, self.start(), timeout)

    def publish(self, message: str = "") -> httpx.Response:
        return self.client.post(f"{self.base}/publish", json={"message": message})

    def rows(self, order: str = "1") -> list[dict[str, Any]]:
        resp = self.client.post("/query", json={
            "sql": f"SELECT * FROM {self.layer}.{self.name} ORDER BY {order}"})
        assert resp.status_code == 200, resp.text
        return list(resp.json()["rows"])

    def get(self) -> dict[str, Any]:
        return dict(self.client.get(self.base).json())


def wait_phase(client: httpx.Client, run_id: str, phases: tuple[str, ...],
               timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    run: dict[str, Any] = {}
    while time.monotonic() < deadline:
        run = client.get(f"/runs/{run_id}").json()
        if run["status"] == "running" and run["phase"] in phases:
            return run
        assert run["status"] in ("pending", "running"), run
        time.sleep(0.1)
    raise TimeoutError(f"run {run_id} never reached {phases}: {run}")


def worker_pid(client: httpx.Client, run_id: str, timeout: float = 30) -> int:
    """The pid of the worker running the run, from its debug log line."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in client.get(f"/runs/{run_id}/logs").json()["logs"]:
            if record["message"].startswith("running on worker pid "):
                return int(record["message"].rsplit(" ", 1)[1])
        time.sleep(0.1)
    raise TimeoutError("no worker pid in the run log")
