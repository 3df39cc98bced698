"""Pages over the table, lineage and console-download services."""

from __future__ import annotations

from tests.conftest import unique, wait_run
from tests.web.conftest import PageClient


def _built_table(pages: PageClient) -> str:
    name = unique("tb")
    with pages.api() as api:
        api.post("/pipelines", json={"namespace": "default", "layer": "silver", "name": name,
                                     "source": "SELECT 1 AS id, 'a' AS label"}).raise_for_status()
        run = api.post("/runs", json={"namespace": "default", "layer": "silver",
                                      "pipeline": name}).json()
        assert wait_run(api, run["run_id"])["status"] == "success"
    return name


def test_table_page_descriptions_and_time_travel(pages: PageClient) -> None:
    name = _built_table(pages)
    base = f"/explorer/default/silver/{name}"
    page = pages.get(base)
    assert page.status_code == 200
    assert "label" in page.text
    bad = pages.post(f"{base}/metadata", {"description": "x" * 5001, "col:id": "key"}, htmx=True)
    assert bad.status_code == 422
    assert 'value="key"' in bad.text
    ok = pages.post(f"{base}/metadata", {"description": "Ids", "col:id": "the key"}, htmx=True)
    assert ok.status_code == 200
    with pages.api() as api:
        detail = api.get(f"/tables/default/silver/{name}").json()
        snapshots = api.get(f"/tables/default/silver/{name}/snapshots").json()["snapshots"]
    assert detail["column_descriptions"] == {"id": "the key"}
    old = pages.get(f"{base}?snapshot={snapshots[-1]['snapshot_id']}", htmx=True)
    assert old.text.lstrip().startswith('<section id="table-preview"')


def test_query_download_streams_csv(pages: PageClient) -> None:
    name = _built_table(pages)
    pages.get("/query")
    resp = pages.post("/query/download", {"sql": f"SELECT * FROM silver.{name}",
                                          "namespace": "default", "format": "csv"})
    assert resp.status_code == 200
    assert resp.headers["content-disposition"] == 'attachment; filename="query.csv"'
    assert resp.text.splitlines()[:2] == ['"id","label"', '1,"a"']
    bad = pages.post("/query/download", {"sql": "DELETE FROM x", "format": "csv"})
    assert bad.status_code == 422
    assert ">DELETE FROM x</textarea>" in bad.text


def test_lineage_draws_links_to_every_node(pages: PageClient) -> None:
    name = _built_table(pages)
    page = pages.get("/lineage")
    assert page.status_code == 200
    assert "<svg" in page.text
    assert f'href="/pipelines/default/silver/{name}"' in page.text
    assert f'href="/explorer/default/silver/{name}"' in page.text
