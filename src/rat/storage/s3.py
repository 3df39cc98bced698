"""S3/MinIO object store through the minio client; single PUT or multipart, both atomic.

Every whole operation is retried with backoff on a transient failure (connection reset or
refused, timeout, 5xx): the minio client itself retries only idempotent methods, and only until
the response starts, so a reset while reading a body or during a multipart POST escaped.
"""

from __future__ import annotations

import builtins
import io
import random
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

from rat.storage.base import ObjectInfo
from rat.storage.keys import validate_key

T = TypeVar("T")
ATTEMPTS = 5
BACKOFF_SECONDS = 0.25
_TRANSIENT_CODES = ("InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout")


def transient(exc: BaseException) -> bool:
    """A failure worth another try: the network or the server, not the request."""
    from minio.error import S3Error, ServerError
    from urllib3.exceptions import HTTPError

    if isinstance(exc, ServerError):
        return exc.status_code >= 500
    if isinstance(exc, S3Error):
        return exc.code in _TRANSIENT_CODES
    return isinstance(exc, HTTPError | ConnectionError | TimeoutError)


def retrying(op: Callable[[], T]) -> T:
    """Run `op`; on a transient failure wait (0.25 s doubling, jittered) and run it again."""
    for attempt in range(ATTEMPTS):
        try:
            return op()
        except Exception as exc:
            if attempt + 1 == ATTEMPTS or not transient(exc):
                raise
        time.sleep(BACKOFF_SECONDS * 2 ** attempt * (0.5 + random.random()))
    raise AssertionError("unreachable")


class S3Store:
    def __init__(self, *, bucket: str, endpoint: str, access_key: str, secret_key: str,
                 region: str, prefix: str = "", secure: bool = True) -> None:
        from minio import Minio

        host = urlparse(endpoint).netloc if "://" in endpoint else endpoint
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = Minio(host or "s3.amazonaws.com", access_key=access_key or None,
                            secret_key=secret_key or None, secure=secure, region=region)

    def _name(self, key: str) -> str:
        return self.prefix + validate_key(key)

    def _key(self, name: str) -> str:
        return name[len(self.prefix):]

    def read(self, key: str) -> bytes:
        return retrying(lambda: self._read(key))

    def _read(self, key: str) -> bytes:
        from minio.error import S3Error

        try:
            resp = self.client.get_object(self.bucket, self._name(key))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                raise FileNotFoundError(key) from None
            raise
        try:
            return resp.read()
        finally:
            resp.close()
            resp.release_conn()

    def write(self, key: str, data: bytes) -> None:
        retrying(lambda: self.client.put_object(self.bucket, self._name(key), io.BytesIO(data),
                                                len(data)))

    def put_file(self, key: str, source: Path) -> None:
        retrying(lambda: self.client.fput_object(self.bucket, self._name(key), str(source),
                                                 part_size=16 * 1024 * 1024))

    def adopt_file(self, key: str, source: Path) -> None:
        self.put_file(key, source)
        source.unlink()

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        resp = self.client.get_object(self.bucket, self._name(key))
        try:
            yield from resp.stream(chunk_size)
        finally:
            resp.close()
            resp.release_conn()

    def stat(self, key: str) -> ObjectInfo | None:
        return retrying(lambda: self._stat(key))

    def _stat(self, key: str) -> ObjectInfo | None:
        from minio.error import S3Error

        try:
            st = self.client.stat_object(self.bucket, self._name(key))
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return None
            raise
        assert st.last_modified is not None  # noqa: S101 - S3 always sends it
        return ObjectInfo(key, st.size or 0, st.last_modified)

    def list(self, prefix: str, *, recursive: bool = True) -> list[ObjectInfo]:
        return retrying(lambda: self._list(prefix, recursive=recursive))

    def _list(self, prefix: str, *, recursive: bool) -> builtins.list[ObjectInfo]:
        objs = self.client.list_objects(self.bucket, prefix=self.prefix + prefix,
                                        recursive=recursive)
        out = [ObjectInfo(self._key(o.object_name), o.size or 0, o.last_modified)
               for o in objs if o.object_name and not o.is_dir and o.last_modified]
        return sorted(out, key=lambda o: o.key)

    def delete(self, key: str) -> bool:
        if self.stat(key) is None:
            return False
        retrying(lambda: self.client.remove_object(self.bucket, self._name(key)))
        return True

    def delete_prefix(self, prefix: str) -> int:
        return retrying(lambda: self._delete_prefix(prefix))

    def _delete_prefix(self, prefix: str) -> int:
        from minio.deleteobjects import DeleteObject

        # Raw listing, not `list()`: zero-byte "directory" markers (keys ending in "/", which
        # S3 writers of the engine leave behind) must go too.
        names = [DeleteObject(o.object_name) for o in self.client.list_objects(
            self.bucket, prefix=self.prefix + prefix, recursive=True) if o.object_name]
        for err in self.client.remove_objects(self.bucket, names):
            raise OSError(f"cannot delete {err.name}: {err.message}")
        return len(names)

    def move(self, source: str, target: str) -> None:
        from minio.commonconfig import CopySource

        retrying(lambda: self.client.copy_object(self.bucket, self._name(target),
                                                 CopySource(self.bucket, self._name(source))))
        retrying(lambda: self.client.remove_object(self.bucket, self._name(source)))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self.prefix}{key}"

    def check(self) -> None:
        if not self.client.bucket_exists(self.bucket):
            raise OSError(f"bucket {self.bucket} does not exist")
