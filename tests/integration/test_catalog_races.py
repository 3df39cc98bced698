"""Concurrent first runs: namespace and table creation are create-if-absent (issue 16.4).

Threads stand for runs (and for servers: each has its own `IcebergTables`) that all find the
layer's namespace, or the table, missing and create it at the same moment.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from rat.app import sqlalchemy_url
from rat.core.specs import StageRequest, StageState, StorageSpec
from rat.engine.catalog import CatalogSpec, IcebergTables

THREADS = 8


def tables_for(dsn: str, root: Path) -> IcebergTables:
    storage = StorageSpec(kind="local", root=str(root / "storage"))
    return IcebergTables(CatalogSpec(type="sql", uri=sqlalchemy_url(dsn), name="rat",
                                     warehouse=str(root / "warehouse"), storage=storage))


def request(ident: str) -> StageRequest:
    import pyarrow as pa

    schema = pa.schema([pa.field("id", pa.int64())])
    return StageRequest(ident=ident, run_id=str(uuid.uuid4()),
                        arrow_schema=schema.serialize().to_pybytes(), partition_by=[],
                        replace_schema=False, table_properties={})


def all_at_once(calls: list[Callable[[], Any]]) -> list[Any]:
    barrier = threading.Barrier(len(calls))

    def go(call: Callable[[], Any]) -> Any:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(go, calls))


@pytest.mark.parametrize("shared", [True, False], ids=["one_server", "many_servers"])
def test_first_runs_of_one_new_layer_create_its_namespace_once(db_dsn: str, tmp_path: Path,
                                                              shared: bool) -> None:
    one = tables_for(db_dsn, tmp_path)
    hosts = [one if shared else tables_for(db_dsn, tmp_path) for _ in range(THREADS)]
    idents = [f"default.bronze.t{i}" for i in range(THREADS)]
    stages: list[StageState] = all_at_once(
        [lambda h=h, i=i: h.prepare_stage(request(i)) for h, i in zip(hosts, idents, strict=True)])
    assert [s.ident for s in stages] == idents
    assert sorted(".".join(t) for t in one.catalog.list_tables(("default", "bronze"))) == idents


def test_first_runs_of_one_new_table_both_stage(db_dsn: str, tmp_path: Path) -> None:
    hosts = [tables_for(db_dsn, tmp_path) for _ in range(THREADS)]
    stages: list[StageState] = all_at_once(
        [lambda h=h: h.prepare_stage(request("default.silver.same")) for h in hosts])
    assert len({s.branch for s in stages}) == THREADS
    table = hosts[0].load("default.silver.same")
    assert table is not None
    assert {s.branch for s in stages} <= set(table.metadata.refs)
    assert {s.base_snapshot_id for s in stages} == {table.metadata.refs["main"].snapshot_id}
