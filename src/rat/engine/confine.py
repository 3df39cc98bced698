"""Inside a worker: confine the process that runs one job (Landlock, resource limits, identity).

The worker zygote starts inside bubblewrap (its own mount view and namespaces, see
rat.runtime.sandbox) and forks one child per job. The child calls `confine` before it touches
user code: from then on it can only open the paths the job's `Confinement` lists, connect to the
listed TCP ports, signal nothing outside itself, and stay within its resource limits. None of it
can be undone by the child (Landlock and `no_new_privs` are one-way; hard rlimits only go down).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
from pathlib import Path

from rat.core.specs import Confinement

_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH, _RULE_NET_PORT = 1, 2
_PR_SET_NO_NEW_PRIVS, _PR_SET_PDEATHSIG = 38, 1

# Filesystem rights by Landlock ABI version (each version adds rights; see landlock(7)).
_EXECUTE, _WRITE_FILE, _READ_FILE, _READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_REMOVE_DIR, _REMOVE_FILE, _MAKE_CHAR, _MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_MAKE_REG, _MAKE_SOCK, _MAKE_FIFO, _MAKE_BLOCK, _MAKE_SYM = 1 << 8, 1 << 9, 1 << 10, 1 << 11, 1 << 12
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FS_V1 = (1 << 13) - 1
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1

_FILE_RIGHTS = _EXECUTE | _WRITE_FILE | _READ_FILE | _TRUNCATE | _IOCTL_DEV
READ = _EXECUTE | _READ_FILE | _READ_DIR
WRITE = (READ | _WRITE_FILE | _REMOVE_DIR | _REMOVE_FILE | _MAKE_DIR | _MAKE_REG | _REFER
         | _TRUNCATE)
DEVICE = _READ_FILE | _WRITE_FILE | _IOCTL_DEV
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random", "/dev/full")


class ConfineError(Exception):
    """The kernel refused a confinement step; the job must not run unconfined."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = (("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64))


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


class _NetPort(ctypes.Structure):
    _fields_ = (("allowed_access", ctypes.c_uint64), ("port", ctypes.c_uint64))


_libc = ctypes.CDLL(None, use_errno=True)


def _syscall(number: int, *args: object) -> int:
    result = int(_libc.syscall(number, *args))
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return result


def landlock_abi() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is missing or disabled."""
    try:
        return _syscall(_SYS_CREATE_RULESET, None, 0, _CREATE_RULESET_VERSION)
    except OSError:
        return 0


def _fs_rights(abi: int) -> int:
    rights = _FS_V1
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    if abi >= 5:
        rights |= _IOCTL_DEV
    return rights


def _ruleset(abi: int, *, network: bool) -> tuple[int, int]:
    """A new ruleset fd and the filesystem rights it handles."""
    fs = _fs_rights(abi)
    attr = _RulesetAttr(handled_access_fs=fs)
    size = 8
    if abi >= 4 and network:
        attr.handled_access_net = _NET_BIND_TCP | _NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL
        size = 24
    return _syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), size, 0), fs


def _allow_path(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return  # nothing there to allow; creating it later stays denied
    try:
        if not Path(path).is_dir():
            rights &= _FILE_RIGHTS
        rule = _PathBeneath(allowed_access=rights, parent_fd=fd)
        _syscall(_SYS_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0)
    finally:
        os.close(fd)


def _allow_port(ruleset: int, port: int) -> None:
    rule = _NetPort(allowed_access=_NET_CONNECT_TCP, port=port)
    _syscall(_SYS_ADD_RULE, ruleset, _RULE_NET_PORT, ctypes.byref(rule), 0)


def die_with_parent() -> None:
    """SIGKILL this process when its parent (the worker zygote) dies."""
    import signal

    _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def no_new_privs() -> None:
    if _libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise ConfineError("prctl(PR_SET_NO_NEW_PRIVS) failed")


def restrict_paths(c: Confinement, abi: int) -> None:
    """Landlock: only the listed paths, ports and no signals or abstract sockets outside."""
    ruleset, fs = _ruleset(abi, network=c.restrict_network)
    try:
        for path in c.read_paths:
            _allow_path(ruleset, path, READ & fs)
        for path in c.write_paths:
            _allow_path(ruleset, path, WRITE & fs)
        for path in DEVICES:
            _allow_path(ruleset, path, DEVICE & fs)
        if c.restrict_network and abi >= 4:
            for port in c.connect_ports:
                _allow_port(ruleset, port)
        no_new_privs()
        _syscall(_SYS_RESTRICT_SELF, ruleset, 0)
    finally:
        os.close(ruleset)


def _limit(kind: int, value: int, grace: int = 0) -> None:
    """Soft limit `value`, hard limit `value + grace` (never above the current hard limit)."""
    _soft, hard = resource.getrlimit(kind)
    ceiling = value + grace
    if hard != resource.RLIM_INFINITY:
        value, ceiling = min(value, hard), min(ceiling, hard)
    resource.setrlimit(kind, (value, ceiling))


def vm_size() -> int:
    """This process's virtual size in bytes (the base the address-space limit adds to)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024
    return 0


def apply_limits(c: Confinement) -> None:
    """Hard limits on the job process: memory (address space), CPU time, processes, files."""
    if c.memory_bytes:
        _limit(resource.RLIMIT_AS, vm_size() + c.memory_bytes)
    if c.cpu_seconds:
        # SIGXCPU at the soft limit names the limit; SIGKILL at the hard one if it is ignored.
        _limit(resource.RLIMIT_CPU, c.cpu_seconds, grace=5)
    if c.max_processes:
        _limit(resource.RLIMIT_NPROC, c.max_processes)
    if c.max_open_files:
        _limit(resource.RLIMIT_NOFILE, c.max_open_files)
    if c.max_file_bytes:
        _limit(resource.RLIMIT_FSIZE, c.max_file_bytes)
    _limit(resource.RLIMIT_CORE, 0)


def confine(c: Confinement) -> None:
    """Apply every layer the job asks for; raise ConfineError rather than run with less."""
    os.umask(0o002)  # files the job writes stay writable by the next run's sandbox group
    if c.scratch_dir:
        import tempfile

        os.environ["TMPDIR"] = os.environ["HOME"] = c.scratch_dir
        tempfile.tempdir = c.scratch_dir
    apply_limits(c)
    if c.landlock:
        abi = landlock_abi()
        if abi < 1:
            raise ConfineError("Landlock is not available in this worker")
        try:
            restrict_paths(c, abi)
        except OSError as exc:
            raise ConfineError(f"cannot apply Landlock rules: {exc}") from None
        install_seccomp()
    else:
        no_new_privs()


def drop_identity(uid: int, gid: int) -> None:
    """Become an unprivileged user for good (the worker started as root inside bubblewrap)."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise ConfineError("could not drop root")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise ConfineError("root could be regained after dropping it")


def limit_message(signal_number: int, c: Confinement) -> str | None:
    """Name the limit a job's death by `signal_number` points at, if any."""
    import signal

    if signal_number == signal.SIGXCPU:
        return f"the run exceeded its CPU time limit ({c.cpu_seconds} s of CPU)"
    if signal_number == signal.SIGXFSZ:
        return f"the run exceeded its file size limit ({c.max_file_bytes} bytes per file)"
    return None


def errno_hint(exc: BaseException, c: Confinement) -> str | None:
    """A hint naming the limit behind an OS error a job raised."""
    if isinstance(exc, MemoryError):
        return f"the run exceeded its memory limit ({c.memory_bytes} bytes)"
    if isinstance(exc, OSError):
        if exc.errno == errno.EAGAIN:
            return f"process limit reached ({c.max_processes} processes)"
        if exc.errno == errno.EMFILE:
            return f"open-file limit reached ({c.max_open_files} files)"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return "denied by the sandbox"
    return None


# seccomp: a filter on top of Landlock for what Landlock cannot express (UDP and raw sockets,
# debugging other processes, namespaces, kernel keyrings, eBPF, io_uring).
_SECCOMP_MODE_FILTER, _PR_SET_SECCOMP = 2, 22
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_LD_ABS, _JEQ, _JGE, _AND, _RET = 0x20, 0x15, 0x35, 0x54, 0x06
_AF_UNIX, _AF_INET, _AF_INET6, _SOCK_STREAM = 1, 2, 10, 1
# arch audit id, socket nr, denied syscalls (EPERM), clone3 (ENOSYS: glibc falls back to clone).
_ARCHES = {
    "x86_64": (0xC000003E, 41, (101, 310, 311, 298, 321, 250, 248, 249, 323, 165, 166, 155, 272,
                                308, 425, 426, 427), 435),
    "aarch64": (0xC00000B7, 198, (117, 270, 271, 241, 280, 219, 217, 218, 282, 40, 39, 41, 97,
                                  268, 425, 426, 427), 435),
}


class _SockFilter(ctypes.Structure):
    _fields_ = (("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32))


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_uint16), ("filter", ctypes.POINTER(_SockFilter)))


Insn = tuple[int, str | int, str | int, int]


def _filter_program(machine: str) -> list[Insn]:
    """The BPF program as (code, jump-if-true, jump-if-false, k); jumps name labels."""
    arch, socket_nr, denied, clone3 = _ARCHES[machine]
    prog: list[Insn] = [(_LD_ABS, 0, 0, 4), (_JEQ, 0, "deny", arch), (_LD_ABS, 0, 0, 0)]
    if machine == "x86_64":
        prog.append((_JGE, "deny", 0, 0x40000000))  # the x32 ABI's syscall numbers
    prog += [(_JEQ, "deny", 0, nr) for nr in denied]
    prog += [(_JEQ, "enosys", 0, clone3), (_JEQ, 0, "allow", socket_nr),
             (_LD_ABS, 0, 0, 16), (_JEQ, "allow", 0, _AF_UNIX), (_JEQ, "stream", 0, _AF_INET),
             (_JEQ, "stream", "deny", _AF_INET6)]
    labels = {"stream": len(prog)}
    prog += [(_LD_ABS, 0, 0, 24), (_AND, 0, 0, 0xF), (_JEQ, "allow", "deny", _SOCK_STREAM)]
    labels.update(allow=len(prog), deny=len(prog) + 1, enosys=len(prog) + 2)
    prog += [(_RET, 0, 0, _RET_ALLOW), (_RET, 0, 0, _RET_ERRNO | errno.EPERM),
             (_RET, 0, 0, _RET_ERRNO | errno.ENOSYS)]
    return [(code, _jump(jt, labels, i), _jump(jf, labels, i), k)
            for i, (code, jt, jf, k) in enumerate(prog)]


def _jump(target: str | int, labels: dict[str, int], at: int) -> int:
    return target if isinstance(target, int) else labels[target] - at - 1


def seccomp_supported() -> bool:
    return os.uname().machine in _ARCHES


def install_seccomp() -> None:
    """Refuse non-TCP network sockets and the syscalls no pipeline needs (needs no_new_privs)."""
    machine = os.uname().machine
    if machine not in _ARCHES:
        raise ConfineError(f"no seccomp filter for {machine}")
    prog = _filter_program(machine)
    insns = (_SockFilter * len(prog))(*(_SockFilter(c, jt, jf, k) for c, jt, jf, k in prog))
    fprog = _SockFprog(len(prog), insns)
    if _libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise ConfineError(f"seccomp filter refused: {os.strerror(ctypes.get_errno())}")
