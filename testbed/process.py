"""Child processes of the test bed: started in their own process group, logged to a file,
stopped with a signal then SIGKILL, and killed by the kernel if the test process dies.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO, TypeVar

from .tools import InfraError

T = TypeVar("T")

_PR_SET_PDEATHSIG = 1
_libc: ctypes.CDLL | None = None
if sys.platform.startswith("linux"):
    _libc_name = ctypes.util.find_library("c")
    _libc = ctypes.CDLL(_libc_name, use_errno=True) if _libc_name else None

_reserved_ports: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and not handed out before by this process."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _reserved_ports:
            _reserved_ports.add(port)
            return port
    raise InfraError("no free TCP port found")


def set_parent_death_signal(sig: signal.Signals) -> None:
    """Ask Linux to send ``sig`` to this process when the thread that forked it exits."""
    if _libc is not None:
        _libc.prctl(_PR_SET_PDEATHSIG, int(sig))


def is_port_conflict(exc: BaseException) -> bool:
    """Whether a startup failure reads like losing a race for a port from :func:`free_port`."""
    text = str(exc).lower()
    return "address already in use" in text or "bindexception" in text


def retry_on_port_conflict(start: Callable[[], None], reset: Callable[[], None], attempts: int = 3) -> None:
    """Run ``start``; if it fails on a taken port, ``reset`` and try again with new ports.

    Another test session on the same machine can grab a port between :func:`free_port` and the
    service binding it.
    """
    for attempt in range(1, attempts + 1):
        try:
            start()
            return
        except InfraError as exc:
            if attempt == attempts or not is_port_conflict(exc):
                raise
            reset()


def _die_with_parent() -> None:
    """Runs in the child between fork and exec (after any uid change): SIGKILL when we die."""
    set_parent_death_signal(signal.SIGKILL)


class ManagedProcess:
    """One long-running child process with its output in ``log_path``.

    The child leads its own process group (so :meth:`stop` reaches its children too) and gets
    SIGKILL from the kernel when the *thread* that started it exits (``PR_SET_PDEATHSIG``), so a
    crashed or killed test run leaves nothing behind. Start services from a thread that outlives
    them -- pytest's main thread does.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str | os.PathLike[str]],
        log_path: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: int | None = None,
        group: int | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        stop_timeout: float = 20.0,
    ) -> None:
        self.name = name
        self.argv = [os.fspath(a) for a in argv]
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.user = user
        self.group = group
        self.stop_signal = stop_signal
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> None:
        if self._proc is not None:
            raise InfraError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._log.write(f"$ {' '.join(self.argv)}\n".encode())
        self._log.flush()
        try:
            self._proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                user=self.user,
                group=self.group,
                extra_groups=[] if self.user is not None and os.geteuid() == 0 else None,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # only a prctl() call in the child
            )
        except OSError as exc:
            self._log.close()
            raise InfraError(f"cannot start {self.name} ({self.argv[0]}): {exc}") from exc

    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def check_running(self) -> None:
        """Raise with the log tail if the process has exited."""
        code = self.returncode()
        if code is not None:
            raise InfraError(
                f"{self.name} exited with code {code} during startup; log {self.log_path}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> int | None:
        """Signal, wait ``stop_timeout``, then SIGKILL the whole process group. Idempotent."""
        proc = self._proc
        if proc is None:
            return None
        try:
            if proc.poll() is None:
                self._signal_group(proc.pid, self.stop_signal)
                try:
                    proc.wait(self.stop_timeout)
                except subprocess.TimeoutExpired:
                    self._signal_group(proc.pid, signal.SIGKILL)
                    proc.wait(10)
            # Leftover children in the group (postgres backends, JVM helpers) go too.
            self._signal_group(proc.pid, signal.SIGKILL)
            return proc.returncode
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)


def run_checked(
    name: str,
    argv: Sequence[str | os.PathLike[str]],
    log_path: Path,
    *,
    timeout: float,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    user: int | None = None,
    group: int | None = None,
) -> None:
    """Run a short-lived command to completion, appending its output to ``log_path``."""
    args = [os.fspath(a) for a in argv]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"$ {' '.join(args)}\n".encode())
        log.flush()
        try:
            proc = subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                user=user,
                group=group,
                extra_groups=[] if user is not None and os.geteuid() == 0 else None,
                timeout=timeout,
                check=False,
                preexec_fn=_die_with_parent,
            )
        except subprocess.TimeoutExpired as exc:
            raise InfraError(f"{name} did not finish within {timeout:.0f}s; log {log_path}") from exc
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-40:])
        raise InfraError(f"{name} failed with exit code {proc.returncode}; log {log_path}:\n{tail}")
