"""The SQL console and the tables API over HTTP, on local disk and on S3."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import msgspec
import pytest

from tests.conftest import RatServer, unique
from tests.e2e.helpers_data import make_table

BIG_ROWS = 1_000_000


@dataclass
class Data:
    server: RatServer
    orders: str
    customers: str
    big: str


@pytest.fixture(scope="module")
def data(ns_server: RatServer) -> Data:
    orders, customers, big = unique("orders"), unique("customers"), unique("big")
    with ns_server.client() as client:
        make_table(client, "silver", orders,
                   "SELECT * FROM (VALUES (1, 10, 5.5), (2, 20, 7.25), (3, 10, 1.0))"
                   " AS t(order_id, customer_id, amount)")
        make_table(client, "silver", customers,
                   "SELECT * FROM (VALUES (10, 'ann'), (20, 'bob')) AS t(customer_id, name)")
        make_table(client, "bronze", big,
                   f"SELECT range AS id, 'name_' || range AS name, range * 0.5 AS amount"
                   f" FROM range({BIG_ROWS})")
    return Data(ns_server, orders, customers, big)


@pytest.fixture
def client(data: Data) -> Iterator[httpx.Client]:
    with data.server.client() as c:
        yield c


def query(client: httpx.Client, sql: str, **extra: object) -> httpx.Response:
    return client.post("/query", json={"sql": sql, **extra})


def ok(resp: httpx.Response) -> dict[str, object]:
    assert resp.status_code == 200, resp.text
    return dict(resp.json())


def error(resp: httpx.Response, status: int) -> str:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body["error"]) == {"code", "type", "message"}
    return str(body["error"]["message"])


def test_two_and_three_part_names_and_a_join(client: httpx.Client, data: Data) -> None:
    two = ok(query(client, f"SELECT order_id FROM silver.{data.orders} ORDER BY 1"))
    three = ok(query(client, f"SELECT order_id FROM default.silver.{data.orders} ORDER BY 1"))
    assert two["rows"] == three["rows"] == [{"order_id": 1}, {"order_id": 2}, {"order_id": 3}]
    joined = ok(query(client, f"SELECT c.name, sum(o.amount) AS total FROM silver.{data.orders} o"
                              f" JOIN default.silver.{data.customers} c USING (customer_id)"
                              " GROUP BY c.name ORDER BY c.name"))
    assert joined["rows"] == [{"name": "ann", "total": 6.5}, {"name": "bob", "total": 7.25}]
    assert joined["columns"] == [{"name": "name", "type": "VARCHAR"},
                                 {"name": "total", "type": "DECIMAL(38,2)"}]
    assert joined["total_rows"] == 2
    assert joined["truncated"] is False
    assert isinstance(joined["duration_ms"], int)


def test_namespace_field_and_hyphenated_namespaces(client: httpx.Client, data: Data) -> None:
    ns = unique("q").replace("_", "-")
    assert client.post("/namespaces", json={"name": ns}).status_code == 201
    make_table(client, "silver", data.orders, "SELECT 'other' AS origin", namespace=ns)
    mine = ok(query(client, f"SELECT origin FROM silver.{data.orders}", namespace=ns))
    assert mine["rows"] == [{"origin": "other"}]
    assert ok(query(client, f"SELECT count(*) AS n FROM silver.{data.orders}"))["rows"] == \
        [{"n": 3}]
    cross = ok(query(client, f"SELECT origin FROM {ns}.silver.{data.orders}"))
    assert cross["rows"] == [{"origin": "other"}]
    assert client.delete(f"/namespaces/{ns}", params={"force": "true"}).status_code == 204


@pytest.mark.parametrize(("body", "fragment"), [
    ({"sql": ""}, "sql must not be empty"),
    ({"sql": "   "}, "sql must not be empty"),
    ({"sql": "SELECT 1 --" + "x" * 100_000}, "at most 100,000 characters"),
    ({"sql": "SELECT 1", "limit": 0}, "limit"),
    ({"sql": "SELECT 1", "format": "xml"}, "format"),
    ({"sql": "SELECT 1", "namespace": "Bad NS"}, "namespace"),
    ({"sql": 5}, "sql"),
])
def test_bad_input(client: httpx.Client, body: dict[str, object], fragment: str) -> None:
    assert fragment in error(client.post("/query", json=body), 400)


def test_unknown_table_and_syntax_errors_name_the_problem(client: httpx.Client) -> None:
    message = error(query(client, "SELECT * FROM silver.no_such_table"), 400)
    assert "silver.no_such_table" in message
    message = error(query(client, "SELECT * FROM gold.x WHER y = 1"), 400)
    assert message.startswith('Parser Error: syntax error at or near "y"')
    assert "LINE 1: SELECT * FROM gold.x WHER y = 1" in message
    message = error(query(client, "SELECT no_such_column FROM range(1)"), 400)
    assert "no_such_column" in message
    resp = client.post("/query", content=b"sql=1", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415


def test_row_limits(client: httpx.Client, data: Data) -> None:
    default = ok(query(client, f"SELECT id FROM bronze.{data.big}"))
    assert default["total_rows"] == 1000
    assert default["truncated"] is True
    small = ok(query(client, f"SELECT id FROM bronze.{data.big} LIMIT 5", limit=5))
    assert small["total_rows"] == 5
    assert small["truncated"] is False
    clamped = ok(query(client, "SELECT * FROM range(20)", limit=50_000))
    assert clamped["total_rows"] == 20
    assert clamped["truncated"] is True, "a limit above RAT_QUERY_MAX_ROWS is clamped"
    capped = ok(query(client, f"SELECT id FROM bronze.{data.big}", limit=50_000))
    assert capped["total_rows"] == 10_000


def test_value_encoding(client: httpx.Client) -> None:
    out = ok(query(client, "SELECT 170141183460469231731687303715884105727::HUGEINT AS h,"
                           " 1.25::DECIMAL(10,2) AS d, 'nan'::DOUBLE AS n, DATE '2024-01-02' AS dt,"
                           " TIMESTAMPTZ '2024-01-02 03:04:05+00' AS ts, '\\x00\\xff'::BLOB AS b,"
                           " MAP {'k': 1} AS m, {'a': [1, 2]} AS s"))
    assert out["rows"] == [{"h": "170141183460469231731687303715884105727", "d": 1.25,
                            "n": "NaN", "dt": "2024-01-02", "ts": "2024-01-02T03:04:05Z",
                            "b": "AP8=", "m": [{"key": "k", "value": 1}], "s": {"a": [1, 2]}}]
    types = [c["type"] for c in out["columns"]]  # type: ignore[attr-defined]
    assert types == ["HUGEINT", "DECIMAL(10,2)", "DOUBLE", "DATE", "TIMESTAMP WITH TIME ZONE",
                     "BLOB", "MAP(VARCHAR, INTEGER)", "STRUCT(a INTEGER[])"]


def test_downloads_in_every_format(client: httpx.Client, data: Data) -> None:
    sql = f"SELECT order_id, amount, [order_id] AS l FROM silver.{data.orders} ORDER BY 1"
    resp = client.post("/query", json={"sql": sql, "format": "csv"})
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/csv")
    assert resp.headers["content-disposition"] == 'attachment; filename="query.csv"'
    assert list(csv.reader(io.StringIO(resp.text))) == [
        ["order_id", "amount", "l"], ["1", "5.50", "[1]"], ["2", "7.25", "[2]"],
        ["3", "1.00", "[3]"]]
    resp = client.post("/query", json={"sql": sql}, headers={"Accept": "application/x-ndjson"})
    assert resp.headers["content-type"].startswith("application/x-ndjson")
    assert [msgspec.json.decode(line) for line in resp.content.splitlines()] == [
        {"order_id": 1, "amount": 5.5, "l": [1]}, {"order_id": 2, "amount": 7.25, "l": [2]},
        {"order_id": 3, "amount": 1.0, "l": [3]}]
    import pyarrow as pa

    resp = client.post("/query", json={"sql": sql, "format": "arrow"})
    assert resp.headers["content-type"] == "application/vnd.apache.arrow.stream"
    table = pa.ipc.open_stream(resp.content).read_all()
    assert table.column("order_id").to_pylist() == [1, 2, 3]
    assert table.column("l").to_pylist() == [[1], [2], [3]]
    refused = client.post("/query", json={"sql": "COPY (SELECT 1) TO 'x'", "format": "csv"})
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "INVALID_ARGUMENT"


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def test_million_row_csv_streams_with_bounded_server_memory(client: httpx.Client,
                                                            data: Data) -> None:
    assert data.server.proc is not None
    pid = data.server.proc.pid
    # Wide rows (~140 MB of CSV): a server that buffered the result would grow by far more.
    sql = f"SELECT *, repeat('x', 100) AS pad FROM bronze.{data.big}"
    baseline = rss(pid)
    peak = baseline
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.05):
            peak = max(peak, rss(pid))

    sampler = threading.Thread(target=sample)
    sampler.start()
    lines = size = 0
    try:
        with client.stream("POST", "/query", json={"sql": sql, "format": "csv"}) as resp:
            assert resp.status_code == 200
            tail = b""
            for chunk in resp.iter_bytes(1 << 16):
                size += len(chunk)
                lines += chunk.count(b"\n")
                tail = (tail + chunk)[-200:]
                time.sleep(0.0005)  # a slower reader than the server: back-pressure holds
    finally:
        stop.set()
        sampler.join()
    assert lines == BIG_ROWS + 1
    assert size > 130_000_000
    assert tail.endswith(b',"' + b"x" * 100 + b'"\n')
    assert peak - baseline < 64 * 1024 * 1024, (baseline, peak)


def test_table_list_detail_and_metadata(client: httpx.Client, data: Data) -> None:
    listed = ok(client.get("/tables", params={"search": data.orders}))
    assert [(t["name"], t["row_count"]) for t in listed["tables"]] == [(data.orders, 3)]  # type: ignore[attr-defined]
    detail = ok(client.get(f"/tables/default/silver/{data.orders}"))
    assert detail["row_count"] == 3
    assert int(detail["size_bytes"]) > 0  # type: ignore[call-overload]
    assert detail["columns"] == [{"name": "order_id", "type": "INTEGER"},
                                 {"name": "customer_id", "type": "INTEGER"},
                                 {"name": "amount", "type": "DECIMAL(3,2)"}]
    assert detail["pipeline"] == {"namespace": "default", "layer": "silver", "name": data.orders}
    assert detail["partition_by"] == []
    assert detail["snapshot_id"]
    assert detail["last_updated_at"]
    assert detail["column_descriptions"] == {}
    resp = client.put(f"/tables/default/silver/{data.orders}/metadata", json={
        "description": "All orders", "owner": "sales",
        "column_descriptions": {"amount": "Order total in EUR"}})
    updated = ok(resp)
    assert updated["description"] == "All orders"
    assert updated["owner"] == "sales"
    assert updated["column_descriptions"] == {"amount": "Order total in EUR"}
    assert updated["columns"][2] == {"name": "amount", "type": "DECIMAL(3,2)",  # type: ignore[index]
                                     "description": "Order total in EUR"}
    bad = client.put(f"/tables/default/silver/{data.orders}/metadata",
                     json={"column_descriptions": {"nope": "x"}})
    assert "nope" in error(bad, 400)
    assert error(client.get("/tables/default/silver/missing_table"), 404)
    schema = ok(client.get("/schema", params={"namespace": "default", "layer": "silver"}))
    mine = [t for t in schema["tables"] if t["name"] == data.orders]  # type: ignore[attr-defined]
    assert mine[0]["columns"][2]["description"] == "Order total in EUR"
    found = ok(client.get("/tables", params={"search": "all orders"}))
    assert [t["name"] for t in found["tables"]] == [data.orders]  # type: ignore[attr-defined]


def test_preview(client: httpx.Client, data: Data) -> None:
    preview = ok(client.get(f"/tables/default/bronze/{data.big}/preview"))
    assert preview["total_rows"] == 50
    assert preview["truncated"] is True
    assert ok(client.get(f"/tables/default/bronze/{data.big}/preview",
                         params={"limit": 1000}))["total_rows"] == 1000
    assert "limit" in error(client.get(f"/tables/default/bronze/{data.big}/preview",
                                       params={"limit": 1001}), 400)


def test_snapshot_history_and_time_travel(client: httpx.Client) -> None:
    name = unique("tt")
    make_table(client, "silver", name, "SELECT 1 AS v")
    make_table(client, "silver", name, "SELECT 2 AS v UNION ALL SELECT 3")
    history = ok(client.get(f"/tables/default/silver/{name}/snapshots"))
    snaps = history["snapshots"]
    assert isinstance(snaps, list)
    assert history["total"] == len(snaps) >= 2
    assert snaps[0]["current"] is True
    assert snaps[0]["total_records"] == 2
    older = next(s for s in snaps if s["total_records"] == 1)
    assert older["run_id"]
    assert older["committed_at"]
    now = ok(query(client, f"SELECT v FROM silver.{name} ORDER BY v"))
    assert now["rows"] == [{"v": 2}, {"v": 3}]
    then = ok(query(client, f"SELECT v FROM silver.{name}",
                    as_of={f"silver.{name}": older["snapshot_id"]}))
    assert then["rows"] == [{"v": 1}]
    preview = ok(client.get(f"/tables/default/silver/{name}/preview",
                            params={"snapshot_id": older["snapshot_id"]}))
    assert preview["rows"] == [{"v": 1}]
    assert ok(query(client, f"SELECT count(*) AS n FROM silver.{name}"))["rows"] == [{"n": 2}]
    error(query(client, "SELECT 1", as_of={f"silver.{name}": 12345}), 404)
    error(query(client, "SELECT 1", as_of={"silver.no_such_table": 1}), 404)
