"""Landing zones over HTTP on local disk and S3: zones, uploads, files, samples, preview, archive."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import RatServer, S3Server, start_server, unique, wait_run

CSV = b"id,name,amount\n1,ann,10.5\n2,bob,20\n3,cy,7.25\n"


def make_zone(client: httpx.Client, name: str | None = None, **extra: object) -> str:
    zone = name or unique("z")
    resp = client.post("/landing-zones", json={"namespace": "default", "name": zone, **extra})
    assert resp.status_code == 201, resp.text
    return zone


def upload(client: httpx.Client, zone: str, filename: str, data: bytes,
           kind: str = "files") -> httpx.Response:
    return client.post(f"/landing-zones/default/{zone}/{kind}",
                       files={"file": (filename, data, "text/csv")})


def test_zone_crud_and_validation(api: httpx.Client) -> None:
    zone = make_zone(api, description="raw orders", expected_schema="id INT, name TEXT")
    got = api.get(f"/landing-zones/default/{zone}").json()
    assert got["description"] == "raw orders"
    assert got["expected_schema"] == "id INT, name TEXT"
    assert (got["file_count"], got["total_bytes"], got["auto_purge"]) == (0, 0, False)
    assert got["processed_max_age_days"] == 30
    dup = api.post("/landing-zones", json={"namespace": "default", "name": zone})
    assert dup.status_code == 409
    assert api.post("/landing-zones", json={"namespace": "nope", "name": "x"}).status_code == 404
    bad = api.post("/landing-zones", json={"namespace": "default", "name": "Bad Name"})
    assert bad.status_code == 400
    assert "name" in bad.json()["error"]["message"]

    put = api.put(f"/landing-zones/default/{zone}", json={"owner": "ann", "description": "d2"})
    assert put.status_code == 200
    assert (put.json()["owner"], put.json()["description"]) == ("ann", "d2")
    listed = api.get("/landing-zones", params={"search": zone}).json()
    assert [z["name"] for z in listed["zones"]] == [zone]
    assert listed["total"] == 1
    assert api.get("/landing-zones", params={"limit": "0"}).status_code == 400

    assert api.put(f"/landing-zones/default/{zone}/lifecycle",
                   json={"processed_max_age_days": 5, "auto_purge": True}).status_code == 204
    assert api.get(f"/landing-zones/default/{zone}/lifecycle").json() == \
        {"processed_max_age_days": 5, "auto_purge": True}
    assert api.put(f"/landing-zones/default/{zone}/lifecycle",
                   json={"processed_max_age_days": 0}).status_code == 400
    assert api.put(f"/landing-zones/default/{zone}/lifecycle",
                   json={"processed_max_age_days": None}).status_code == 204
    assert api.get(f"/landing-zones/default/{zone}/lifecycle").json() == \
        {"processed_max_age_days": None, "auto_purge": True}

    assert api.delete(f"/landing-zones/default/{zone}").status_code == 204
    assert api.get(f"/landing-zones/default/{zone}").status_code == 404


def test_upload_list_download_delete(rat_server: RatServer) -> None:
    with rat_server.client() as client:
        zone = make_zone(client)
        resp = upload(client, zone, "orders.csv", CSV)
        assert resp.status_code == 201, resp.text
        body = resp.json()
        assert body["filename"] == "orders.csv"
        assert re.fullmatch(rf"default/landing/{zone}/\d{{8}}_\d{{6}}_orders\.csv",
                            body["s3_path"]), body["s3_path"]
        assert body["size_bytes"] == len(CSV)
        assert body["content_type"] == "text/csv"
        assert body["processed_run_id"] is None

        second = upload(client, zone, "orders.csv", CSV).json()
        assert second["s3_path"] != body["s3_path"]
        assert re.search(r"_orders(_\d+)?\.csv$", second["s3_path"])

        listed = client.get(f"/landing-zones/default/{zone}/files").json()
        assert listed["total"] == 2
        assert [f["id"] for f in listed["files"]] == [second["id"], body["id"]]
        zone_info = client.get(f"/landing-zones/default/{zone}").json()
        assert (zone_info["file_count"], zone_info["total_bytes"]) == (2, 2 * len(CSV))

        one = client.get(f"/landing-zones/default/{zone}/files/{body['id']}")
        assert one.json()["s3_path"] == body["s3_path"]
        dl = client.get(f"/landing-zones/default/{zone}/files/{body['id']}/download")
        assert dl.status_code == 200
        assert dl.content == CSV
        assert dl.headers["content-type"] == "application/octet-stream"
        assert dl.headers["content-disposition"].startswith("attachment")
        assert dl.headers["x-content-type-options"] == "nosniff"

        assert client.delete(f"/landing-zones/default/{zone}/files/{body['id']}").status_code \
            == 204
        assert client.get(f"/landing-zones/default/{zone}/files/{body['id']}").status_code == 404
        assert client.get(f"/files/{body['s3_path']}").status_code == 404
        assert client.get(f"/landing-zones/default/{zone}/files/not-a-uuid").status_code == 400


def test_preview_csv_json_parquet_and_samples(rat_server: RatServer) -> None:
    import duckdb

    with rat_server.client() as client:
        zone = make_zone(client)
        csv_id = upload(client, zone, "orders.csv", CSV).json()["id"]
        out = client.get(f"/landing-zones/default/{zone}/files/{csv_id}/preview",
                         params={"limit": 2})
        assert out.status_code == 200, out.text
        body = out.json()
        assert body["format"] == "csv"
        assert [c["name"] for c in body["columns"]] == ["id", "name", "amount"]
        assert body["rows"] == [{"id": 1, "name": "ann", "amount": 10.5},
                                {"id": 2, "name": "bob", "amount": 20.0}]
        assert body["truncated"] is True

        ndjson = b'{"a": 1, "b": "x"}\n{"a": 2, "b": "y"}\n'
        json_id = upload(client, zone, "events.ndjson", ndjson).json()["id"]
        out = client.get(f"/landing-zones/default/{zone}/files/{json_id}/preview").json()
        assert (out["format"], out["rows"]) == ("json", [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}])

        buf = io.BytesIO()
        con = duckdb.connect()
        con.sql("SELECT range AS n FROM range(5)").arrow()
        import pyarrow.parquet as pq

        pq.write_table(con.sql("SELECT range AS n FROM range(5)").arrow().read_all(), buf)
        pq_id = upload(client, zone, "numbers.parquet", buf.getvalue()).json()["id"]
        out = client.get(f"/landing-zones/default/{zone}/files/{pq_id}/preview").json()
        assert (out["format"], out["total_rows"]) == ("parquet", 5)

        bin_id = upload(client, zone, "blob.bin", b"\x00\x01").json()["id"]
        refused = client.get(f"/landing-zones/default/{zone}/files/{bin_id}/preview")
        assert refused.status_code == 415
        assert client.get(f"/landing-zones/default/{zone}/files/{csv_id}/preview",
                          params={"limit": 1001}).status_code == 400

        sample = upload(client, zone, "sample one.csv", b"k\n1\n", kind="samples")
        assert sample.status_code == 201, sample.text
        assert sample.json() == {"path": f"default/landing/{zone}/_samples/sample one.csv",
                                 "filename": "sample one.csv", "size": 4, "status": "uploaded"}
        again = upload(client, zone, "sample one.csv", b"k\n1\n2\n", kind="samples")
        assert again.status_code == 201  # overwrite allowed
        samples = client.get(f"/landing-zones/default/{zone}/samples").json()
        assert samples["total"] == 1
        assert samples["files"][0]["type"] == "sample"
        prev = client.get(f"/landing-zones/default/{zone}/samples/sample one.csv/preview")
        assert prev.json()["rows"] == [{"k": 1}, {"k": 2}]
        # samples are not landing files: no row, no change to the zone's counters
        assert client.get(f"/landing-zones/default/{zone}").json()["file_count"] == 4
        assert client.delete(f"/landing-zones/default/{zone}/samples/sample one.csv"
                             ).status_code == 204
        assert client.delete(f"/landing-zones/default/{zone}/samples/sample one.csv"
                             ).status_code == 404


def test_bad_uploads_are_refused_and_store_nothing(api: httpx.Client) -> None:
    zone = make_zone(api)
    for name in (b"../evil.csv", b"a/b.csv", b"a\\b.csv", b".hidden.csv", b"x\x01.csv",
                 b"x" * 256):
        raw = (b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"" + name +
               b"\"\r\n\r\n" + CSV + b"\r\n--b--\r\n")
        resp = api.post(f"/landing-zones/default/{zone}/files", content=raw,
                        headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert resp.status_code == 400, (name, resp.text)
        assert resp.json()["error"]["code"] == "INVALID_ARGUMENT"
    assert upload(api, unique("nozone"), "ok.csv", CSV).status_code == 404
    missing = api.post(f"/landing-zones/default/{zone}/files", files={"other": ("a.csv", b"1")})
    assert missing.status_code == 400
    not_multipart = api.post(f"/landing-zones/default/{zone}/files", content=b"x",
                             headers={"Content-Type": "text/plain"})
    assert not_multipart.status_code == 415
    assert upload(api, zone, "../s.csv", CSV, kind="samples").status_code == 400
    assert api.get(f"/landing-zones/default/{zone}/files").json()["total"] == 0
    assert api.get(f"/files?prefix=default/landing/{zone}/").json()["files"] == []


@pytest.fixture(scope="module")
def small_limit_server(pg_base: str, template_db: str, s3_server: S3Server
                       ) -> Iterator[RatServer]:
    server = start_server(pg_base, template_db, "local", None,
                          {"RAT_UPLOAD_MAX_BYTES": str(64 * 1024)})
    try:
        yield server
    finally:
        server.stop()


def test_upload_over_the_limit_gets_413_and_nothing_is_stored(small_limit_server: RatServer
                                                              ) -> None:
    with small_limit_server.client() as client:
        zone = make_zone(client)
        big = b"x" * (200 * 1024)
        resp = upload(client, zone, "big.csv", big)
        assert resp.status_code == 413
        assert resp.json()["error"]["type"] == "VALIDATION"

        def chunked() -> Iterator[bytes]:  # no Content-Length: the bytes read are what count
            yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"c.csv\"\r\n\r\n"
            for _ in range(20):
                yield b"y" * 16384
            yield b"\r\n--b--\r\n"

        streamed = client.post(f"/landing-zones/default/{zone}/files", content=chunked(),
                               headers={"Content-Type": "multipart/form-data; boundary=b"})
        assert streamed.status_code == 413
        assert upload(client, zone, "small.csv", CSV).status_code == 201
        files = client.get(f"/landing-zones/default/{zone}/files").json()["files"]
        assert [f["filename"] for f in files] == ["small.csv"]
        spool = small_limit_server.data_dir / "tmp" / "uploads"
        assert not any(spool.iterdir()) if spool.exists() else True
        storage = small_limit_server.data_dir / "storage" / "default" / "landing" / zone
        assert [p.name.endswith("_small.csv") for p in storage.iterdir()] == [True]


def test_bronze_run_reads_only_top_level_and_archives(rat_server: RatServer) -> None:
    """`landing_zone()` never reads `_samples/`; with archive_landing_zones the captured files
    move to `_processed/{run_id}/` and the next run reads only what arrived since."""
    with rat_server.client() as client:
        zone, name = make_zone(client), unique("raw")
        sql = ("-- @archive_landing_zones: true\n"
               f"SELECT id, name FROM read_csv_auto('{{{{ landing_zone(\"{zone}\") }}}}')")
        created = client.post("/pipelines", json={"namespace": "default", "layer": "bronze",
                                                   "name": name, "source": sql})
        assert created.status_code == 201, created.text
        assert upload(client, zone, "s.csv", b"id,name\n99,sample\n", kind="samples"
                      ).status_code == 201
        first = upload(client, zone, "a.csv", CSV).json()
        run = client.post("/runs", json={"namespace": "default", "layer": "bronze",
                                         "pipeline": name}).json()
        assert wait_run(client, run["run_id"])["status"] == "success"
        rows = client.post("/query", json={"sql": f"SELECT id FROM bronze.{name} ORDER BY id"})
        assert rows.json()["rows"] == [{"id": 1}, {"id": 2}, {"id": 3}]

        archived = _wait_processed(client, zone, first["id"])
        assert archived["processed_run_id"] == run["run_id"]
        assert archived["s3_path"] == f"default/landing/{zone}/_processed/{run['run_id']}/" + \
            first["s3_path"].rsplit("/", 1)[1]
        processed = client.get(f"/landing-zones/default/{zone}/processed",
                               params={"run_id": run["run_id"]}).json()
        assert [p["path"] for p in processed["files"]] == [archived["s3_path"]]
        assert client.get(f"/landing-zones/default/{zone}/files").json()["total"] == 0
        assert client.get(f"/landing-zones/default/{zone}/files",
                          params={"include_processed": "true"}).json()["total"] == 1
        assert client.get(f"/landing-zones/default/{zone}/samples").json()["total"] == 1
        dl = client.get(f"/landing-zones/default/{zone}/files/{first['id']}/download")
        assert dl.content == CSV


def _wait_processed(client: httpx.Client, zone: str, file_id: str) -> dict[str, object]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = client.get(f"/landing-zones/default/{zone}/files/{file_id}").json()
        if row["processed_run_id"]:
            return dict(row)
        time.sleep(0.1)
    raise AssertionError("file was not archived")
