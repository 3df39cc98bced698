"""The synchronous ObjectStore contract and the async facade the services use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Protocol

import msgspec


class ObjectInfo(msgspec.Struct, frozen=True):
    key: str
    size: int
    modified: datetime


class ObjectStore(Protocol):
    """Blocking object operations on relative keys. Writes are atomic: readers never see a part."""

    def read(self, key: str) -> bytes:
        """Whole object; FileNotFoundError when absent."""

    def write(self, key: str, data: bytes) -> None: ...

    def put_file(self, key: str, source: Path) -> None:
        """Store a local file (streamed; large files never enter memory)."""

    def adopt_file(self, key: str, source: Path) -> None:
        """Store a local file and consume it: a local store renames it into place (no copy)."""

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]: ...

    def stat(self, key: str) -> ObjectInfo | None: ...

    def list(self, prefix: str, *, recursive: bool = True) -> list[ObjectInfo]:
        """Objects under `prefix` (a folder prefix ending in '/'), sorted by key."""

    def delete(self, key: str) -> bool:
        """Remove one object; False when it did not exist."""

    def delete_prefix(self, prefix: str) -> int: ...

    def move(self, source: str, target: str) -> None: ...

    def uri(self, key: str) -> str:
        """Location DuckDB and pyiceberg use for `key` (absolute path or s3:// URL)."""

    def check(self) -> None:
        """Raise when the store is unreachable (readiness probe)."""


class Storage:
    """Async facade: every blocking store call runs in a worker thread, never on the event loop."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    async def read(self, key: str) -> bytes:
        return await asyncio.to_thread(self.store.read, key)

    async def read_optional(self, key: str) -> bytes | None:
        try:
            return await self.read(key)
        except FileNotFoundError:
            return None

    async def write(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self.store.write, key, data)

    async def put_file(self, key: str, source: Path) -> None:
        await asyncio.to_thread(self.store.put_file, key, source)

    async def adopt_file(self, key: str, source: Path) -> None:
        await asyncio.to_thread(self.store.adopt_file, key, source)

    async def iter_chunks(self, key: str) -> AsyncIterator[bytes]:
        """Stream an object; FileNotFoundError (on the first chunk) when it is absent."""
        chunks = self.store.iter_chunks(key)
        while (chunk := await asyncio.to_thread(next, chunks, b"")) != b"":
            yield chunk

    async def stat(self, key: str) -> ObjectInfo | None:
        return await asyncio.to_thread(self.store.stat, key)

    async def list(self, prefix: str, *, recursive: bool = True) -> list[ObjectInfo]:
        return await asyncio.to_thread(self.store.list, prefix, recursive=recursive)

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self.store.delete, key)

    async def delete_prefix(self, prefix: str) -> int:
        return await asyncio.to_thread(self.store.delete_prefix, prefix)

    async def move(self, source: str, target: str) -> None:
        await asyncio.to_thread(self.store.move, source, target)

    def uri(self, key: str) -> str:
        return self.store.uri(key)

    def key_of(self, uri: str) -> str | None:
        """The key behind a `uri()` location, or None when it lies outside this store."""
        root = self.store.uri("k")[:-1]
        return uri[len(root):] if uri.startswith(root) and len(uri) > len(root) else None

    async def check(self) -> None:
        await asyncio.to_thread(self.store.check)
