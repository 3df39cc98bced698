"""Local-directory object store with atomic writes (temp file, fsync, rename)."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from rat.storage.base import ObjectInfo
from rat.storage.keys import validate_key


class LinkRefused(FileNotFoundError):
    """A key runs through a symbolic link: storage never leaves its root (reads as not found)."""


class LocalStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        """The key's path; refused when any component below the root is a symbolic link."""
        path = self.root
        for part in Path(validate_key(key)).parts:
            path = path / part
            if path.is_symlink():
                raise LinkRefused(errno.ENOENT, "not found (a symbolic link)", key)
        return path

    def _atomic(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        # mkstemp makes 0600; objects are read by sandboxed workers running as other users.
        os.fchmod(fd, 0o644)
        try:
            with os.fdopen(fd, "wb") as out:
                fill(out)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def write(self, key: str, data: bytes) -> None:
        self._atomic(key, lambda out: out.write(data))

    def put_file(self, key: str, source: Path) -> None:
        def fill(out: BinaryIO) -> None:
            with source.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 20)

        self._atomic(key, fill)

    def adopt_file(self, key: str, source: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        with source.open("rb") as src:
            os.fsync(src.fileno())
            os.fchmod(src.fileno(), 0o644)  # spooled as 0600; sandboxed workers read it
        try:
            os.replace(source, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            self.put_file(key, source)  # spool on another filesystem: copy instead
            source.unlink()

    def iter_chunks(self, key: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        with self._path(key).open("rb") as src:
            while chunk := src.read(chunk_size):
                yield chunk

    def stat(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC))

    def list(self, prefix: str, *, recursive: bool = True) -> list[ObjectInfo]:
        base = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not base.is_dir():
            return []
        out = []
        for path in _files(base, recursive=recursive):
            if not path.name.startswith(".tmp-"):
                st = path.stat()
                key = path.relative_to(self.root).as_posix()
                out.append(ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC)))
        return sorted(out, key=lambda o: o.key)

    def delete(self, key: str) -> bool:
        try:
            self._path(key).unlink()
        except (FileNotFoundError, IsADirectoryError):
            return False
        return True

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix.rstrip("/"))
        if not base.exists():
            return 0
        count = sum(1 for _ in _files(base, recursive=True))
        shutil.rmtree(base)
        return count

    def move(self, source: str, target: str) -> None:
        dest = self._path(target)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._path(source), dest)

    def uri(self, key: str) -> str:
        return str(self.root / key) if key else str(self.root)

    def check(self) -> None:
        probe = self.root / ".rat-health"
        probe.write_bytes(b"ok")
        probe.unlink()


def _files(base: Path, *, recursive: bool) -> Iterator[Path]:
    """Regular files under `base`, never through a symbolic link."""
    for top, dirs, files in os.walk(base, followlinks=False):
        for name in files:
            path = Path(top) / name
            if not path.is_symlink() and path.is_file():
                yield path
        if not recursive:
            return
        dirs[:] = [d for d in dirs if not (Path(top) / d).is_symlink()]
