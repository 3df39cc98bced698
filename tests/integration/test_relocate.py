"""Relocating Iceberg tables: rewritten metadata reads the same rows from the new root only."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from rat.engine.relocate import RelocationError, Relocator, is_manifest_list, is_metadata_key


def _table(root: Path) -> str:
    import pyarrow as pa
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.transforms import IdentityTransform

    catalog = SqlCatalog("rat", uri=f"sqlite:///{root}/catalog.db", warehouse=str(root / "wh"))
    catalog.create_namespace(("default", "silver"))
    schema = pa.schema([("id", pa.int64()), ("region", pa.string())])
    table = catalog.create_table(("default", "silver", "t"), schema)
    with table.update_spec() as spec:  # partition values must survive the Avro round trip
        spec.add_field("region", IdentityTransform(), "region")
    table = catalog.load_table(("default", "silver", "t"))
    table.append(pa.table({"id": [1, 2, 3], "region": ["eu", "us", "eu"]}))
    table.append(pa.table({"id": [4], "region": ["apac"]}))
    table.delete("id = 2")  # copy-on-write: rewrites a data file, no delete files
    return str(table.metadata_location)


def _relocate(old: Path, new: Path) -> Relocator:
    shutil.copytree(old / "wh", new / "wh")
    relocator = Relocator(str(old), str(new))
    keys = sorted((p.relative_to(new).as_posix() for p in (new / "wh").rglob("*") if p.is_file()),
                  key=lambda k: (k.endswith(".metadata.json"), is_manifest_list(k)))
    for key in keys:
        if is_metadata_key(key):
            (new / key).write_bytes(relocator.rewrite(key, (new / key).read_bytes()))
    shutil.rmtree(old / "wh")
    return relocator


def test_relocated_table_reads_with_pyiceberg_and_duckdb(tmp_path: Path) -> None:
    import duckdb
    from pyiceberg.table import StaticTable

    from rat.engine.duck import extension_path, sql_str

    old, new = tmp_path / "old", tmp_path / "somewhere" / "new"
    old.mkdir()
    new.mkdir(parents=True)
    metadata = _table(old)
    relocator = _relocate(old, new)
    moved = relocator.move(metadata)
    assert moved.startswith(str(new))

    doc = json.loads(Path(moved).read_text())
    assert doc["location"].startswith(str(new))
    assert all(s["manifest-list"].startswith(str(new)) for s in doc["snapshots"])
    assert all(e["metadata-file"].startswith(str(new)) for e in doc["metadata-log"])
    table = StaticTable.from_metadata(moved)
    assert sorted(table.scan().to_arrow().to_pylist(), key=lambda r: r["id"]) == [
        {"id": 1, "region": "eu"}, {"id": 3, "region": "eu"}, {"id": 4, "region": "apac"}]
    files = table.inspect.files().to_pylist()
    assert files
    assert all(f["file_path"].startswith(str(new)) for f in files)

    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    con.execute(f"LOAD {sql_str(extension_path('avro'))}")
    con.execute(f"LOAD {sql_str(extension_path('iceberg'))}")
    rows = con.execute(f"SELECT id FROM iceberg_scan({sql_str(moved)}) ORDER BY id").fetchall()
    assert rows == [(1,), (3,), (4,)]


def test_gzipped_metadata_and_paths_outside_the_root(tmp_path: Path) -> None:
    relocator = Relocator("s3://old/pre", "s3://new")
    doc = {"location": "s3://old/pre/_warehouse/t", "snapshots": [
        {"manifest-list": "s3://old/pre/_warehouse/t/metadata/snap-1.avro"},
        {"manifest-list": "s3://elsewhere/snap-2.avro"}],
        "metadata-log": [], "properties": {"write.data.path": "s3://old/pre/data", "k": "v"}}
    out = relocator.rewrite("_warehouse/t/metadata/00001.gz.metadata.json",
                            gzip.compress(json.dumps(doc).encode()))
    moved = json.loads(gzip.decompress(out))
    assert moved["location"] == "s3://new/_warehouse/t"
    assert [s["manifest-list"] for s in moved["snapshots"]] == [
        "s3://new/_warehouse/t/metadata/snap-1.avro", "s3://elsewhere/snap-2.avro"]
    assert moved["properties"] == {"write.data.path": "s3://new/data", "k": "v"}


def test_delete_files_are_refused(tmp_path: Path) -> None:
    from pyiceberg.io.pyarrow import PyArrowFileIO
    from pyiceberg.manifest import ManifestContent, ManifestFile, write_manifest_list

    out = PyArrowFileIO().new_output(str(tmp_path / "snap-1-0-x.avro"))
    deletes = ManifestFile.from_args(
        manifest_path="/old/wh/t/metadata/d-m0.avro", manifest_length=1, partition_spec_id=0,
        content=ManifestContent.DELETES, sequence_number=1, min_sequence_number=1,
        added_snapshot_id=1, added_files_count=1, existing_files_count=0,
        deleted_files_count=0, added_rows_count=1, existing_rows_count=0, deleted_rows_count=0)
    with write_manifest_list(format_version=2, output_file=out, snapshot_id=1,
                             parent_snapshot_id=None, sequence_number=1,
                             avro_compression="deflate") as writer:
        writer.add_manifests([deletes])
    with pytest.raises(RelocationError, match="delete files"):
        Relocator("/old", "/new").rewrite("wh/t/metadata/snap-1-0-x.avro",
                                          (tmp_path / "snap-1-0-x.avro").read_bytes())
