"""The OS sandbox around worker processes (docs/adr/0005-os-sandbox-for-pipelines.md).

What a host offers, how a worker is launched, and what each job may reach.

Layers, outermost first:
1. bubblewrap: a mount view with the interpreter, libraries, the storage root and the scratch
   root only (no data dir, no Postgres socket, no secret key), new pid/ipc/uts namespaces, a new
   network namespace unless storage is remote, `--die-with-parent`, `--new-session`.
2. A dedicated unprivileged uid per worker slot and RAT instance when RAT runs as root (workers drop to it before
   importing anything); one shared group lets successive runs write a table's data directory.
3. Per job, in a forked child: Landlock (only the job's paths and the storage port; no signals or
   abstract sockets outside the job) and hard rlimits (address space, CPU, processes, files).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import msgspec

from rat.core.specs import Confinement, StorageSpec
from rat.engine.confine import landlock_abi

log = logging.getLogger(__name__)
Mode = Literal["auto", "on", "off"]
SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ssl", "/etc/ca-certificates",
               "/etc/localtime", "/etc/hosts", "/etc/resolv.conf", "/etc/nsswitch.conf",
               "/etc/passwd", "/etc/group", "/etc/ld.so.cache", "/etc/alternatives",
               "/etc/pki", "/etc/crypto-policies")
# Worker uids: a block of 1,000 per RAT instance (derived from its data dir), so two servers on
# one host never share a uid: RLIMIT_NPROC counts every thread of a uid, host-wide.
# Also readable by a job: DuckDB sizes itself from cgroup and CPU files, and treats a refused
# (rather than absent) one as an internal error.
JOB_READ = ("/proc", "/sys/fs/cgroup", "/sys/devices/system/cpu")
UID_FLOOR = 100_000
UID_BLOCKS = 40_000
SANDBOX_GID = 61000
POOL_UID_OFFSET = {"run": 0, "preview": 200, "query": 400}


class Limits(msgspec.Struct, frozen=True, kw_only=True):
    """Per-job resource limits (0 = unlimited)."""

    memory_bytes: int = 0
    cpu_seconds: int = 0
    max_processes: int = 256
    max_open_files: int = 1024
    max_file_bytes: int = 0
    scratch_bytes: int = 0


class Sandbox(msgspec.Struct, frozen=True, kw_only=True):
    """What this host gives the workers; `enabled` means every layer below is in force."""

    mode: Mode
    enabled: bool
    bwrap: str = ""
    landlock_abi: int = 0
    drop_root: bool = False
    uid_base: int = UID_FLOOR
    storage_root: str = ""
    scratch_root: str = ""
    remote_storage_port: int = 0
    python_paths: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    limits: Limits = Limits()

    def status(self) -> dict[str, object]:
        """The `/health/ready` details."""
        return {"status": "ok" if self.enabled else "off", "enabled": self.enabled, "mode": self.mode, "bubblewrap": bool(self.bwrap),
                "landlock_abi": self.landlock_abi, "dedicated_uid": self.drop_root,
                "network": "storage port only" if self.remote_storage_port else "none",
                "missing": list(self.missing)}

    def summary(self) -> str:
        if not self.enabled:
            why = "; ".join(self.missing) or "RAT_SANDBOX=off"
            return f"pipeline sandbox OFF ({why}): pipeline code runs with the server's rights"
        layers = ["bubblewrap namespaces", f"Landlock ABI {self.landlock_abi}", "rlimits"]
        if self.drop_root:
            layers.append("dedicated uids")
        return "pipeline sandbox on: " + ", ".join(layers)

    def identity(self, kind: str, slot: int) -> tuple[int, int] | None:
        if not self.enabled or not self.drop_root:
            return None
        return self.uid_base + POOL_UID_OFFSET.get(kind, 600) + slot % 200, SANDBOX_GID

    def argv(self, command: list[str]) -> list[str]:
        """`command` wrapped in bubblewrap (unchanged when the sandbox is off)."""
        if not self.enabled:
            return command
        args = [self.bwrap, "--die-with-parent", "--new-session", "--unshare-pid",
                "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
                "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/"]  # noqa: S108 - a private tmpfs
        if not self.remote_storage_port:
            args.append("--unshare-net")
        if not self.drop_root:
            args.append("--unshare-user")
        ro = [p for p in (*SYSTEM_READ, *self.python_paths) if Path(p).exists()]
        rw = [p for p in (self.storage_root, self.scratch_root) if p]
        args += _parents([*ro, *rw])
        for path in ro:
            if Path(path).is_symlink():  # e.g. /etc/localtime: its target names the time zone
                args += ["--symlink", os.readlink(path), path]
            else:
                args += ["--ro-bind", path, path]
        for path in rw:
            args += ["--bind", path, path]
        return [*args, "--", *command]

    def jail(self, *, read: list[str], write: list[str], scratch: str = "",
             memory_bytes: int | None = None) -> Confinement:
        """A job's confinement: its own paths on top of the interpreter and libraries."""
        limits = self.limits
        return Confinement(
            landlock=self.enabled,
            read_paths=(*SYSTEM_READ, *JOB_READ, *self.python_paths, *read),
            write_paths=tuple(write), restrict_network=True,
            connect_ports=(self.remote_storage_port,) if self.remote_storage_port else (),
            memory_bytes=limits.memory_bytes if memory_bytes is None else memory_bytes,
            cpu_seconds=limits.cpu_seconds, max_processes=limits.max_processes,
            max_open_files=limits.max_open_files, max_file_bytes=limits.max_file_bytes,
            scratch_dir=scratch, scratch_bytes=limits.scratch_bytes if scratch else 0)


def _parents(paths: list[str]) -> list[str]:
    """Create the mount points' parents world-traversable (bwrap would make them 0700)."""
    wanted = sorted({str(parent) for p in paths for parent in Path(p).parents
                     if parent != Path("/")}, key=lambda p: p.count("/"))
    out: list[str] = []
    for path in wanted:
        out += ["--perms", "0755", "--dir", path]
    return out


def python_paths(hidden: list[Path]) -> tuple[str, ...]:
    """Where the interpreter and importable code live, minus anything holding `hidden` paths."""
    candidates = {sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path,
                  str(Path(sys.executable).resolve().parent.parent)}
    out = []
    for raw in sorted(c for c in candidates if c):
        path = Path(raw).resolve()
        if not path.is_dir() or path == Path("/"):
            continue
        if any(h == path or path in h.parents for h in hidden):
            log.warning("sandbox: not exposing %s to workers (it holds RAT's data)", path)
            continue
        out.append(str(path))
    return tuple(out)


def storage_port(spec: StorageSpec) -> int:
    if spec.kind != "s3":
        return 0
    endpoint = spec.endpoint if "://" in spec.endpoint else f"//{spec.endpoint}"
    parts = urlsplit(endpoint or "https://s3.amazonaws.com")
    return parts.port or (443 if spec.use_ssl else 80)


def _bwrap_works(bwrap: str, *, user_ns: bool, net: bool) -> str | None:
    """None when a trivial sandbox starts, else why not."""
    args = [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--proc", "/proc", "--dev", "/dev"]
    if user_ns:
        args.append("--unshare-user")
    if net:
        args.append("--unshare-net")
    try:
        done = subprocess.run([*args, "true"], capture_output=True, timeout=10, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap cannot start: {exc}"
    if done.returncode != 0:
        return "bubblewrap cannot create namespaces: " + done.stderr.decode(errors="replace").strip()
    return None


def probe(mode: Mode, *, storage: StorageSpec, data_path: Path, limits: Limits) -> Sandbox:
    """Find out which layers this host offers; with mode `off` none is used."""
    scratch_root = str(data_path / "tmp")
    storage_root = storage.root if storage.kind == "local" else ""
    port = storage_port(storage)
    if mode == "off":
        return Sandbox(mode=mode, enabled=False, limits=limits)
    missing = []
    bwrap = shutil.which("bwrap") or ""
    root = os.geteuid() == 0
    if not bwrap:
        missing.append("bubblewrap (bwrap) is not installed")
    else:
        problem = _bwrap_works(bwrap, user_ns=not root, net=not port)
        if problem:
            missing.append(problem)
    abi = landlock_abi()
    if abi < 1:
        missing.append("the kernel has no Landlock (Linux >= 5.13 with lsm=landlock)")
    elif port and abi < 4:
        missing.append(f"Landlock ABI {abi} cannot limit TCP ports (needs >= 4, Linux 6.7)")
    hidden = [data_path / "pg", data_path / "secret_key", data_path]
    block = zlib.crc32(str(data_path).encode()) % UID_BLOCKS
    return Sandbox(mode=mode, enabled=not missing, bwrap=bwrap, landlock_abi=abi, drop_root=root,
                   uid_base=UID_FLOOR + block * 1000, storage_root=storage_root, scratch_root=scratch_root,
                   remote_storage_port=port, python_paths=python_paths(hidden),
                   missing=tuple(missing), limits=limits)


def prepare_shared_dir(path: Path, sandbox: Sandbox) -> None:
    """Create `path` so every worker uid may write it (group-owned, setgid, group-writable)."""
    path.mkdir(parents=True, exist_ok=True)
    if not sandbox.drop_root:
        return
    info = path.stat()
    if info.st_gid == SANDBOX_GID and info.st_mode & 0o2070 == 0o2070:
        return
    for base, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            _share(Path(base) / name, dirs=name in dirs)
    _share(path, dirs=True)


def _share(path: Path, *, dirs: bool) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.chown(path, -1, SANDBOX_GID, follow_symlinks=False)
        if not path.is_symlink():
            path.chmod(0o2775 if dirs else 0o664)
