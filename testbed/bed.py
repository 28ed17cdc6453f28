"""The test session's services, started lazily on first use and stopped once at the end.

``tests/conftest.py`` (pytest) and ``python3 -m testbed`` (the demo) both drive this class, so
the demo runs exactly what the tests run.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .controlplane import ControlPlane
from .kafka import KafkaBroker
from .postgres import PostgresServer
from .tools import REPO_ROOT, InfraError

CRD_DIR = REPO_ROOT / "crds"


def crd_files() -> list[Path]:
    files = sorted(CRD_DIR.glob("*.yaml"))
    if not files:
        raise InfraError(
            f"no CRD in {CRD_DIR}: generate it with `charging-analytics crds crds/` (or "
            "`python3 -c \"import sys; sys.path.insert(0,'operator'); from charging_analytics.crd "
            "import write_crd; from pathlib import Path; write_crd(Path('crds'))\"`)"
        )
    return files


def unique_name(hint: str, max_len: int = 63) -> str:
    """A DNS-1123 label from ``hint`` plus a random suffix."""
    base = re.sub(r"[^a-z0-9-]+", "-", hint.lower()).strip("-") or "t"
    suffix = uuid.uuid4().hex[:6]
    return f"{base[: max_len - len(suffix) - 1].rstrip('-')}-{suffix}"


def _make_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="cha-testbed-"))
    # Searchable (not listable) by others: PostgreSQL runs as an unprivileged account when the
    # tests run as root and must reach its own subdirectory. Secrets live in 0700 subdirs.
    root.chmod(0o711)
    return root


@dataclass
class Testbed:
    root: Path = field(default_factory=_make_root)
    _control_plane: ControlPlane | None = None
    _kafka: KafkaBroker | None = None
    _postgres: PostgresServer | None = None
    _failed: dict[str, BaseException] = field(default_factory=dict)
    #: Seconds each service took to become ready (kept after :meth:`close`).
    startup: dict[str, float] = field(default_factory=dict)
    #: Whether :meth:`close` left ``root`` (logs, data) on disk.
    kept: bool = False

    def _guard(self, name: str) -> None:
        if name in self._failed:
            raise InfraError(f"{name} failed to start earlier in this session: {self._failed[name]}")

    def control_plane(self) -> ControlPlane:
        """etcd + kube-apiserver with every CRD from ``crds/`` installed."""
        if self._control_plane is None:
            self._guard("control plane")
            try:
                files = crd_files()
                cp = ControlPlane(workdir=self.root / "k8s")
                self._control_plane = cp
                cp.start()
                self.startup["etcd"] = cp.etcd_seconds or 0.0
                self.startup["kube-apiserver"] = cp.apiserver_seconds or 0.0
                for path in files:
                    cp.install_crd(path)
            except BaseException as exc:
                self._failed["control plane"] = exc
                raise
        return self._control_plane

    def kafka(self) -> KafkaBroker:
        if self._kafka is None:
            self._guard("kafka")
            try:
                self._kafka = KafkaBroker(workdir=self.root / "kafka")
                self._kafka.start()
                self.startup["kafka"] = self._kafka.startup_seconds or 0.0
            except BaseException as exc:
                self._failed["kafka"] = exc
                raise
        return self._kafka

    def postgres(self) -> PostgresServer:
        if self._postgres is None:
            self._guard("postgres")
            try:
                self._postgres = PostgresServer(workdir=self.root / "postgres")
                self._postgres.start()
                self.startup["postgres"] = self._postgres.startup_seconds or 0.0
            except BaseException as exc:
                self._failed["postgres"] = exc
                raise
        return self._postgres

    def log_files(self) -> dict[str, Path]:
        """Every service's log that exists, by file name."""
        paths: list[Path] = []
        for svc in (self._control_plane, self._kafka, self._postgres):
            if svc is not None and svc.workdir is not None:
                paths += svc.log_files()
        return {p.name: p for p in paths if p.exists()}

    @property
    def used(self) -> bool:
        """Whether any service was started (or failed to start) this session."""
        return bool(self.startup or self._failed)

    def close(self, *, keep: bool = False) -> None:
        """Stop every service (API server before etcd; independent of each other's failures).

        ``keep`` leaves the root (logs, data) on disk if a service got as far as writing a log.
        """
        keep = keep and self.used and any(self.root.rglob("*.log"))
        errors: list[str] = []
        for svc in (self._control_plane, self._kafka, self._postgres):
            if svc is None:
                continue
            try:
                svc.stop(keep_workdir=True)
            except Exception as exc:
                errors.append(f"{type(svc).__name__}: {exc}")
        self._control_plane = self._kafka = self._postgres = None
        self.kept = keep
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise InfraError("test bed teardown failed: " + "; ".join(errors))


def tail(path: Path, lines: int = 80) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
