"""A throwaway local PostgreSQL server for ``charging-analytics preview``.

``initdb`` into a temporary directory and ``postgres`` listening on a unix socket in it only (no
TCP port, so nothing to collide with), trust authentication, stopped and deleted on exit.
PostgreSQL refuses to run as root; as root the server runs as the unprivileged ``nobody``.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

BIN_GLOB = "usr/lib/postgresql/*/bin"
UNPRIVILEGED_USER = "nobody"


class LocalPostgresError(Exception):
    """No local PostgreSQL could be started (the message says why, in one line)."""


def find_bindir() -> Path | None:
    """Directory with ``initdb`` and ``postgres``: ``$PATH`` first, then the newest Debian major."""
    initdb = shutil.which("initdb")
    if initdb is not None and (Path(initdb).parent / "postgres").is_file():
        return Path(initdb).parent
    found = [p for p in Path("/").glob(BIN_GLOB) if (p / "initdb").is_file() and (p / "postgres").is_file()]
    if not found:
        return None
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)


@dataclass(frozen=True)
class _Server:
    """Where the server lives and whom it runs as."""

    bindir: Path
    workdir: Path
    uid: int | None
    gid: int | None

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", ""), "LC_ALL": "C", "TZ": "UTC", "HOME": str(self.workdir)}

    @property
    def data(self) -> Path:
        return self.workdir / "data"

    @property
    def log(self) -> Path:
        return self.workdir / "postgres.log"


#: Settings for a throwaway server: no TCP, no durability.
_SETTINGS = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "logging_collector": "off",
    "work_mem": "64MB",
}


@contextmanager
def local_postgres(timeout_s: float = 60.0) -> Iterator[str]:
    """Start a server; yield a libpq connection string for it; stop and delete it afterwards."""
    bindir = find_bindir()
    if bindir is None:
        raise LocalPostgresError(
            "no PostgreSQL server binaries (initdb, postgres) found on PATH or in /usr/lib/postgresql; "
            "install them or pass --postgres-dsn"
        )
    server = _workdir(bindir)
    proc: subprocess.Popen[bytes] | None = None
    try:
        _initdb(server)
        proc = _start(server)
        dsn = psycopg.conninfo.make_conninfo(host=str(server.workdir), user="postgres", dbname="postgres")
        _wait_until_ready(server, proc, dsn, timeout_s)
        yield dsn
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(server.workdir, ignore_errors=True)


def _workdir(bindir: Path) -> _Server:
    """A private temporary directory, owned by the unprivileged user when running as root."""
    workdir = Path(tempfile.mkdtemp(prefix="cha-preview-pg-"))
    if os.geteuid() != 0:
        return _Server(bindir, workdir, None, None)
    entry = pwd.getpwnam(UNPRIVILEGED_USER)
    os.chmod(workdir, 0o700)
    os.chown(workdir, entry.pw_uid, entry.pw_gid)
    return _Server(bindir, workdir, entry.pw_uid, entry.pw_gid)


def _initdb(s: _Server) -> None:
    init = subprocess.run(
        [s.bindir / "initdb", "-D", s.data, "-U", "postgres", "--auth=trust", "--encoding=UTF8",
         "--locale=C", "--no-sync", "--no-instructions"],
        capture_output=True, env=s.env, cwd=s.workdir, user=s.uid, group=s.gid, timeout=120, check=False,
    )  # fmt: skip
    if init.returncode != 0:
        raise LocalPostgresError(f"initdb failed: {init.stderr.decode(errors='replace').strip()[-300:]}")


def _start(s: _Server) -> subprocess.Popen[bytes]:
    argv: list[str | os.PathLike[str]] = [s.bindir / "postgres", "-D", s.data]
    settings = {**_SETTINGS, "unix_socket_directories": str(s.workdir)}
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    with s.log.open("wb") as out:
        return subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=s.env, cwd=s.workdir, user=s.uid, group=s.gid,
            start_new_session=True,
        )  # fmt: skip


def _wait_until_ready(s: _Server, proc: subprocess.Popen[bytes], dsn: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None:
            tail = s.log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            raise LocalPostgresError(f"postgres exited with {proc.returncode}: {tail[0]}")
        try:
            with psycopg.connect(dsn, connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise LocalPostgresError(
                    f"postgres did not accept connections within {timeout_s:.0f}s"
                ) from None
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)  # PostgreSQL's fast shutdown
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
