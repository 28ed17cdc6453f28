"""A throwaway PostgreSQL cluster for tests (the alert sink's target database).

``initdb`` into a temporary directory, ``postgres`` on a random loopback port with its unix
socket in that directory, trust authentication on loopback except for the password user
``alerts_writer`` who owns the database ``alerts``.

PostgreSQL refuses to run as root.  When the tests run as root (CI, sessions) the cluster runs
as the system user ``chatest`` (created with ``useradd`` if missing), falling back to ``nobody``.
"""

from __future__ import annotations

import grp
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from .polling import STARTUP, wait_for
from .process import ManagedProcess, free_port, retry_on_port_conflict, run_checked
from .server import Server
from .tools import InfraError, postgres_bin_dir

SERVICE_USER = "chatest"
FALLBACK_USER = "nobody"


@dataclass(frozen=True)
class RunAs:
    uid: int
    gid: int
    name: str


def service_account() -> RunAs | None:
    """The account to run PostgreSQL as; ``None`` means the current (non-root) user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(SERVICE_USER)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is not None:
            # Exit 9: created concurrently by another run. Anything else: fall back below.
            subprocess.run(
                [useradd, "--system", "--user-group", "--no-create-home", SERVICE_USER],
                check=False,
                capture_output=True,
            )
        try:
            entry = pwd.getpwnam(SERVICE_USER)
        except KeyError:
            entry = pwd.getpwnam(FALLBACK_USER)
    if entry.pw_uid == 0:
        raise InfraError(f"user {entry.pw_name} is root; PostgreSQL needs a non-root account")
    return RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name)


def _check_traversable(path: Path, account: RunAs) -> None:
    """Every parent of ``path`` must let ``account`` through, or postgres cannot reach its dir."""
    groups = {g.gr_gid for g in grp.getgrall() if account.name in g.gr_mem} | {account.gid}
    for parent in path.parents:
        st = parent.stat()
        if st.st_uid == account.uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid in groups:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            raise InfraError(
                f"{parent} is not searchable by {account.name}, who runs PostgreSQL; "
                f"point TMPDIR at a world-searchable directory (e.g. one under /tmp)"
            )


@dataclass
class PostgresServer(Server):
    """One PostgreSQL cluster in ``workdir`` (a fresh temporary directory if ``None``)."""

    workdir_prefix = "cha-postgres-"
    start_timeout: float = 60.0
    alerts_user: str = "alerts_writer"
    alerts_password: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    alerts_db: str = "alerts"
    superuser: str = "postgres"
    host: str = "127.0.0.1"
    port: int = 0
    startup_seconds: float | None = None
    run_as: RunAs | None = None
    #: (certificate, key) PEM: the server speaks TLS with them (``ssl=on``).
    server_tls: tuple[bytes, bytes] | None = field(default=None, repr=False)
    #: A CA (PEM) whose client certificates the alerts user must present (``clientcert=verify-ca``).
    client_ca: bytes | None = field(default=None, repr=False)
    _process: ManagedProcess | None = field(default=None, repr=False)

    @property
    def socket_dir(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "sock"

    @property
    def log_path(self) -> Path:
        assert self.workdir is not None
        return self.workdir / "postgres.log"

    def log_files(self) -> list[Path]:
        return [self.log_path]

    def conninfo(
        self, *, user: str | None = None, dbname: str | None = None, password: str | None = None
    ) -> str:
        """A libpq keyword/value connection string over TCP (password users must pass it)."""
        parts = {
            "host": self.host,
            "port": str(self.port),
            "user": user or self.superuser,
            "dbname": dbname or "postgres",
            "connect_timeout": "5",
        }
        if password is not None:
            parts["password"] = password
        return psycopg.conninfo.make_conninfo(**parts)

    def alerts_conninfo(self) -> str:
        return self.conninfo(user=self.alerts_user, dbname=self.alerts_db, password=self.alerts_password)

    def connect(
        self,
        *,
        user: str | None = None,
        dbname: str | None = None,
        password: str | None = None,
        autocommit: bool = True,
    ) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(
            self.conninfo(user=user, dbname=dbname, password=password), autocommit=autocommit
        )

    def start(self) -> PostgresServer:
        bindir = postgres_bin_dir()
        self.run_as = service_account()
        workdir = self.make_workdir()
        t0 = time.monotonic()
        data = workdir / "data"
        self.socket_dir.mkdir(exist_ok=True)
        self.log_path.touch()
        uid = gid = None
        if self.run_as is not None:
            _check_traversable(workdir, self.run_as)
            uid, gid = self.run_as.uid, self.run_as.gid
            for path in (workdir, self.socket_dir, self.log_path):
                os.chown(path, uid, gid)
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(workdir),
            "LC_ALL": "C",
            "TZ": "UTC",
        }
        run_checked(
            "initdb",
            [
                bindir / "initdb",
                "-D",
                data,
                "-U",
                self.superuser,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            self.log_path,
            timeout=120,
            env=env,
            cwd=self.workdir,
            user=uid,
            group=gid,
        )
        # with a client CA the alerts user must come over TLS with a certificate that CA signed
        alerts = (
            f"hostssl all {self.alerts_user} {{}} scram-sha-256 clientcert=verify-ca\n"
            if self.client_ca is not None
            else f"host all {self.alerts_user} {{}} scram-sha-256\n"
        )
        (data / "pg_hba.conf").write_text(
            "# generated by testbed/postgres.py\n"
            "local all all trust\n"
            + alerts.format("127.0.0.1/32")
            + alerts.format("::1/128")
            + "host all all 127.0.0.1/32 trust\n"
            "host all all ::1/128 trust\n",
            encoding="utf-8",
        )
        self._write_tls_files(data, uid, gid)
        try:
            retry_on_port_conflict(lambda: self._start_server(bindir, data, env, uid, gid), self._stop_server)
            self._create_alerts_database()
        except BaseException:
            self.stop(keep_workdir=True)
            raise
        self.startup_seconds = time.monotonic() - t0
        return self

    def _write_tls_files(self, data: Path, uid: int | None, gid: int | None) -> None:
        """The server's certificate and key (PostgreSQL refuses a key others can read: 0600)."""
        files: dict[str, bytes] = {}
        if self.server_tls is not None:
            files["server.crt"], files["server.key"] = self.server_tls
        if self.client_ca is not None:
            files["client-ca.crt"] = self.client_ca
        for name, content in files.items():
            path = data / name
            path.write_bytes(content)
            path.chmod(0o600)
            if uid is not None and gid is not None:
                os.chown(path, uid, gid)

    def _start_server(
        self, bindir: Path, data: Path, env: dict[str, str], uid: int | None, gid: int | None
    ) -> None:
        self.port = free_port()
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "fsync": "off",
            "synchronous_commit": "off",
            "full_page_writes": "off",
            "dynamic_shared_memory_type": "mmap",
            "max_connections": "100",
            "shared_buffers": "64MB",
            "logging_collector": "off",
            "log_min_messages": "warning",
            "password_encryption": "scram-sha-256",
        }
        if self.server_tls is not None:
            settings |= {"ssl": "on", "ssl_cert_file": "server.crt", "ssl_key_file": "server.key"}
        if self.client_ca is not None:
            settings["ssl_ca_file"] = "client-ca.crt"
        argv: list[str | os.PathLike[str]] = [bindir / "postgres", "-D", data]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        # SIGINT is PostgreSQL's "fast" shutdown (SIGTERM waits for clients to disconnect).
        self._process = process = ManagedProcess(
            "postgres",
            argv,
            self.log_path,
            env=env,
            cwd=self.workdir,
            user=uid,
            group=gid,
            stop_signal=signal.SIGINT,
            stop_timeout=20,
        )
        process.start()
        wait_for(
            self._accepts_connections,
            self.start_timeout,
            f"PostgreSQL on {self.host}:{self.port}",
            poll=STARTUP.starting_every(0.05),
            check=process.check_running,
        )

    def _stop_server(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None

    def _accepts_connections(self) -> bool:
        with self.connect() as conn:
            conn.execute("SELECT 1")
        return True

    def _create_alerts_database(self) -> None:
        with self.connect() as conn:
            conn.execute(
                psycopg.sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    psycopg.sql.Identifier(self.alerts_user), psycopg.sql.Literal(self.alerts_password)
                )
            )
            conn.execute(
                psycopg.sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    psycopg.sql.Identifier(self.alerts_db), psycopg.sql.Identifier(self.alerts_user)
                )
            )

