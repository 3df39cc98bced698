"""The ObjectStore contract, run against both backends: a local directory and an S3 server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rat.core.errors import Invalid
from rat.storage.base import ObjectStore
from rat.storage.local import LocalStore
from rat.storage.s3 import S3Store
from tests.conftest import S3Server


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "root")
        return
    s3: S3Server = request.getfixturevalue("s3_server")
    yield S3Store(bucket=s3.make_bucket(), endpoint=s3.endpoint, access_key="test",
                  secret_key="test", region="us-east-1", prefix="pre", secure=False)


def test_write_read_stat_list_delete(store: ObjectStore) -> None:
    store.write("ns/a/one.txt", b"1")
    store.write("ns/a/b/two.txt", b"22")
    store.write("ns/other.txt", b"333")
    assert store.read("ns/a/b/two.txt") == b"22"
    info = store.stat("ns/other.txt")
    assert info is not None
    assert info.size == 3
    assert store.stat("ns/missing") is None
    assert [o.key for o in store.list("ns/a/")] == ["ns/a/b/two.txt", "ns/a/one.txt"]
    assert [o.key for o in store.list("ns/a/", recursive=False)] == ["ns/a/one.txt"]
    assert store.delete("ns/a/one.txt") is True
    assert store.delete("ns/a/one.txt") is False
    with pytest.raises(FileNotFoundError):
        store.read("ns/a/one.txt")


def test_put_file_move_and_prefix_delete(store: ObjectStore, tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (3 * 1024 * 1024 + 7))
    store.put_file("ns/up/big.bin", big)
    assert b"".join(store.iter_chunks("ns/up/big.bin")) == big.read_bytes()
    store.move("ns/up/big.bin", "ns/up/_processed/r1/big.bin")
    assert store.stat("ns/up/big.bin") is None
    assert store.stat("ns/up/_processed/r1/big.bin") is not None
    assert store.delete_prefix("ns/up/") == 1
    assert store.list("ns/up/") == []


def test_overwrite_is_atomic_replacement(store: ObjectStore) -> None:
    store.write("ns/f.txt", b"old")
    store.write("ns/f.txt", b"new")
    assert store.read("ns/f.txt") == b"new"
    assert [o.key for o in store.list("ns/")] == ["ns/f.txt"]


@pytest.mark.parametrize("key", ["../escape", "ns/%2e%2e/x", "/abs"])
def test_unsafe_keys_never_reach_the_backend(store: ObjectStore, key: str) -> None:
    with pytest.raises(Invalid):
        store.write(key, b"x")


def test_uri_addresses_the_same_object(store: ObjectStore) -> None:
    uri = store.uri("ns/f.parquet")
    assert uri.endswith("ns/f.parquet")
    assert uri.startswith(("s3://", "/"))
