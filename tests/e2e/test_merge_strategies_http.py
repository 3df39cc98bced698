"""Each merge strategy over HTTP alone, on local disk and on S3: config.yaml, two runs, a query."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.conftest import RatServer, unique, wait_run


class Pipeline:
    """One silver pipeline driven through the files, runs and query APIs."""

    def __init__(self, client: httpx.Client, config: str) -> None:
        self.client = client
        self.name = unique("merge")
        resp = client.post("/pipelines", json={"namespace": "default", "layer": "silver",
                                               "name": self.name, "source": "SELECT 1 AS id"})
        assert resp.status_code == 201, resp.text
        self.put("config.yaml", config)

    def put(self, file: str, content: str) -> None:
        path = f"default/pipelines/silver/{self.name}/{file}"
        resp = self.client.put(f"/files/{path}", json={"content": content})
        assert resp.status_code == 200, resp.text

    def run(self, sql: str) -> dict[str, Any]:
        self.put("pipeline.sql", sql)
        resp = self.client.post("/runs", json={"namespace": "default", "layer": "silver",
                                               "pipeline": self.name})
        assert resp.status_code == 202, resp.text
        run = wait_run(self.client, resp.json()["run_id"])
        assert run["status"] == "success", run
        return dict(self.client.get(f"/runs/{run['id']}").json())

    def rows(self, columns: str = "id, v") -> list[dict[str, Any]]:
        resp = self.client.post("/query", json={
            "sql": f"SELECT {columns} FROM silver.{self.name} ORDER BY ALL NULLS LAST"})
        assert resp.status_code == 200, resp.text
        return list(resp.json()["rows"])


def values(rows: str, cols: str = "id, v") -> str:
    return f"SELECT * FROM (VALUES {rows}) AS r({cols})"


def write_meta(run: dict[str, Any]) -> dict[str, Any]:
    return next(p["metadata"] for p in run["phase_profiles"] if p["name"] == "write")


def rows_of(pairs: list[tuple[Any, Any]]) -> list[dict[str, Any]]:
    return [{"id": i, "v": v} for i, v in pairs]


@pytest.mark.parametrize(("config", "first", "second", "expected", "written"), [
    ("merge_strategy: full_refresh\n", "(1, 'a'), (2, 'b')", "(2, 'x'), (3, 'y')",
     [(2, "x"), (3, "y")], 2),
    ("merge_strategy: incremental\nunique_key: [id]\n", "(1, 'a'), (2, 'b')",
     "(2, 'x'), (3, 'y'), (3, 'z')", [(1, "a"), (2, "x"), (3, "z")], 2),
    ("merge_strategy: append_only\n", "(1, 'a')", "(1, 'a'), (2, 'b')",
     [(1, "a"), (1, "a"), (2, "b")], 2),
    ("merge_strategy: delete_insert\nunique_key: [id]\n", "(1, 'a'), (2, 'b')",
     "(2, 'x'), (2, 'y'), (3, 'z')", [(1, "a"), (2, "x"), (2, "y"), (3, "z")], 3),
    ("merge_strategy: snapshot\npartition_column: id\npartition_by: [{column: id}]\n",
     "(1, 'a'), (1, 'b'), (2, 'c')", "(2, 'd'), (3, 'e')",
     [(1, "a"), (1, "b"), (2, "d"), (3, "e")], 2),
], ids=["full_refresh", "incremental", "append_only", "delete_insert", "snapshot"])
def test_strategy_worked_example(rat_server: RatServer, config: str, first: str, second: str,
                                 expected: list[tuple[Any, Any]], written: int) -> None:
    with rat_server.client() as client:
        pipeline = Pipeline(client, config)
        pipeline.run(values(first))
        run = pipeline.run(values(second))
        assert run["rows_written"] == written
        assert write_meta(run)["rows_written"] == written
        assert pipeline.rows() == rows_of(expected)


def test_scd2_versions_changed_keys(rat_server: RatServer) -> None:
    with rat_server.client() as client:
        pipeline = Pipeline(client, "merge_strategy: scd2\nunique_key: [id]\n")
        pipeline.run(values("(1, 'a'), (2, 'b')"))
        run = pipeline.run(values("(1, 'a'), (2, 'B'), (3, 'c')"))
        assert run["rows_written"] == 2
        assert write_meta(run)["rows_closed"] == 1
        rows = pipeline.rows("id, v, valid_to IS NULL AS open")
        assert rows == [{"id": 1, "v": "a", "open": True}, {"id": 2, "v": "B", "open": True},
                        {"id": 2, "v": "b", "open": False}, {"id": 3, "v": "c", "open": True}]


def test_type_conflict_fails_the_run_clearly(rat_server: RatServer) -> None:
    with rat_server.client() as client:
        pipeline = Pipeline(client, "merge_strategy: incremental\nunique_key: [id]\n")
        pipeline.run("SELECT 1 AS id, 10 AS n")
        pipeline.put("pipeline.sql", "SELECT 1 AS id, 'ten' AS n")
        resp = client.post("/runs", json={"namespace": "default", "layer": "silver",
                                          "pipeline": pipeline.name})
        run = wait_run(client, resp.json()["run_id"])
        assert run["status"] == "failed"
        assert run["error"] == "column n changed type INTEGER → VARCHAR; use full_refresh"
        assert pipeline.rows("id, n") == [{"id": 1, "n": 10}]
