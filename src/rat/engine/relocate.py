"""Move Iceberg tables to another storage root by rewriting the locations inside their metadata.

Iceberg stores absolute locations: `*.metadata.json` names the table location, its manifest
lists and earlier metadata files; a manifest list names manifests; a manifest names data files.
A restore into a different data directory (or bucket) rewrites those three file kinds so every
location under the old root points under the new one; data files (parquet) hold no locations.
This is what Iceberg's own `rewrite_table_path` procedure does, without needing Spark.

The Avro files are decoded and re-encoded with pyiceberg's Avro codec using the file's own
schema, and the header metadata (Iceberg schema, partition spec, format version) is kept as is.
Delete files are refused: position deletes name data files inside parquet, and RAT never writes
them (its merges rewrite data files).
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Callable
from typing import Any

MANIFEST_LIST_PREFIX = "snap-"  # how pyiceberg and Java name manifest lists
_SYNC_SIZE = 16


class RelocationError(Exception):
    """A metadata file cannot be relocated."""


def is_metadata_key(key: str) -> bool:
    """True for the files that hold locations: metadata JSON, manifest lists and manifests."""
    if "/metadata/" not in key:
        return False
    return key.endswith((".metadata.json", ".avro"))


def is_manifest_list(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(MANIFEST_LIST_PREFIX)


class _BytesInput:
    """The slice of pyiceberg's InputFile that its Avro reader uses."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def open(self, seek: bool = True) -> io.BytesIO:  # noqa: FBT001, FBT002 - pyiceberg's signature
        return io.BytesIO(self.data)


class Relocator:
    def __init__(self, old_root: str, new_root: str) -> None:
        self.old = old_root.rstrip("/") + "/"
        self.new = new_root.rstrip("/") + "/"
        # New byte sizes of rewritten manifests, so manifest lists can state them correctly.
        self.sizes: dict[str, int] = {}

    def move(self, location: str) -> str:
        return self.new + location[len(self.old):] if location.startswith(self.old) else location

    def rewrite(self, key: str, data: bytes) -> bytes:
        """The relocated content of metadata file `key` (manifests before manifest lists)."""
        if key.endswith(".metadata.json"):
            return self._metadata_json(data, gz=key.endswith(".gz.metadata.json"))
        if is_manifest_list(key):
            return _rewrite_avro(data, self._fix_list)
        out = _rewrite_avro(data, self._fix_manifest)
        self.sizes[self.move(self.old + key)] = len(out)
        return out

    def _metadata_json(self, data: bytes, *, gz: bool) -> bytes:
        doc = json.loads(gzip.decompress(data) if gz else data)
        doc["location"] = self.move(doc["location"])
        for snap in doc.get("snapshots", []):
            if "manifest-list" in snap:
                snap["manifest-list"] = self.move(snap["manifest-list"])
            if "manifests" in snap:  # format v1 without manifest lists
                snap["manifests"] = [self.move(m) for m in snap["manifests"]]
        for entry in doc.get("metadata-log", []):
            entry["metadata-file"] = self.move(entry["metadata-file"])
        for key in ("statistics", "partition-statistics"):
            for stats in doc.get(key, []):
                stats["statistics-path"] = self.move(stats["statistics-path"])
        props = doc.get("properties", {})
        for name, value in props.items():
            if isinstance(value, str):
                props[name] = self.move(value)
        out = json.dumps(doc).encode()
        return gzip.compress(out) if gz else out

    def _fix_list(self, schema: Any) -> Callable[[Any], None]:
        fields = _names(schema.fields)
        path_at, length_at = fields.index("manifest_path"), fields.index("manifest_length")
        content_at = fields.index("content") if "content" in fields else None

        def fix(record: Any) -> None:
            if content_at is not None and record[content_at]:
                raise RelocationError("tables with delete files cannot be relocated")
            record[path_at] = self.move(record[path_at])
            record[length_at] = self.sizes.get(record[path_at], record[length_at])

        return fix

    def _fix_manifest(self, schema: Any) -> Callable[[Any], None]:
        file_at = _names(schema.fields).index("data_file")
        inner = _names(schema.fields[file_at].field_type.fields)
        path_at = inner.index("file_path")
        content_at = inner.index("content") if "content" in inner else None

        def fix(record: Any) -> None:
            data_file = record[file_at]
            if content_at is not None and data_file[content_at]:
                raise RelocationError("tables with delete files cannot be relocated")
            data_file[path_at] = self.move(data_file[path_at])

        return fix


def _names(fields: Any) -> list[str]:
    return [f.name for f in fields]


def _rewrite_avro(data: bytes, make_fix: Callable[[Any], Callable[[Any], None]]) -> bytes:
    from pyiceberg.avro.encoder import BinaryEncoder
    from pyiceberg.avro.file import MAGIC, META_SCHEMA, AvroFile, AvroFileHeader
    from pyiceberg.avro.resolver import construct_writer

    with AvroFile[Any](_BytesInput(data)) as reader:  # type: ignore[arg-type]
        records = list(reader)
        schema, header = reader.schema, reader.header
    fix = make_fix(schema)
    for record in records:
        fix(record)
    out = io.BytesIO()
    encoder = BinaryEncoder(out)
    sync = os.urandom(_SYNC_SIZE)
    construct_writer(META_SCHEMA).write(encoder, AvroFileHeader(MAGIC, header.meta, sync))
    if records:
        block = io.BytesIO()
        writer = construct_writer(schema)
        block_encoder = BinaryEncoder(block)
        for record in records:
            writer.write(block_encoder, record)
        content = block.getvalue()
        codec = header.compression_codec()
        if codec is not None:
            content, _ = codec.compress(content)
        encoder.write_int(len(records))
        encoder.write_int(len(content))
        encoder.write(content)
        encoder.write(sync)
    return out.getvalue()
