"""Where the test bed's tools live: pinned versions and cached binaries.

Versions come from ``scripts/versions.env`` (the one place they are pinned); binaries from
``$CHARGING_TOOLS_DIR`` (default ``~/.cache/charging-analytics/tools``), filled by
``scripts/provision.sh``.  A missing tool is an error naming the provision target to run, never
a skip.
"""

from __future__ import annotations

import os
import re
from functools import cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
VERSIONS_FILE = REPO_ROOT / "scripts" / "versions.env"
#: The glob Debian's postgresql packages install server binaries under.
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"


class InfraError(RuntimeError):
    """A test-bed service could not be started or used."""


class ToolMissingError(InfraError):
    """A binary the test bed needs is not provisioned."""

    def __init__(self, what: str, path: Path | str, target: str) -> None:
        super().__init__(
            f"{what} not found at {path}. Run `scripts/provision.sh {target}` "
            f"(tools dir: {tools_dir()}; override with $CHARGING_TOOLS_DIR)."
        )
        self.target = target


@cache
def versions() -> dict[str, str]:
    """``scripts/versions.env`` as a dict (``KEY=value`` lines, comments ignored)."""
    out: dict[str, str] = {}
    for raw in VERSIONS_FILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not re.fullmatch(r"[A-Z_][A-Z0-9_]*", key):
            raise InfraError(f"{VERSIONS_FILE}: cannot parse line {raw!r}")
        out[key] = value.strip().strip("'\"")
    return out


def tools_dir() -> Path:
    env = os.environ.get("CHARGING_TOOLS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "charging-analytics" / "tools"


def kubernetes_version() -> str:
    return versions()["KUBERNETES_VERSION"]


def kafka_version() -> str:
    return versions()["KAFKA_VERSION"]


def k8s_binary(name: str) -> Path:
    """``kube-apiserver`` or ``etcd`` from the cache, or :class:`ToolMissingError`."""
    path = tools_dir() / f"k8s-{kubernetes_version()}" / name
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ToolMissingError(name, path, "k8s")
    return path


def kafka_libs() -> Path:
    """The directory of the Kafka broker's jars."""
    home = tools_dir() / f"kafka-{kafka_version()}"
    libs = home / "libs"
    if not (home / ".complete").is_file() or not any(libs.glob("kafka_2.13-*.jar")):
        raise ToolMissingError(f"Kafka {kafka_version()} broker jars", libs, "kafka")
    return libs


def java_binary() -> Path:
    java_home = os.environ.get("JAVA_HOME")
    candidates = [Path(java_home) / "bin" / "java"] if java_home else []
    candidates += [Path(p) / "java" for p in os.environ.get("PATH", "").split(os.pathsep) if p]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    raise ToolMissingError("java (JDK 17+)", "$JAVA_HOME/bin or $PATH", "kafka")


def postgres_bin_dir() -> Path:
    """The newest ``/usr/lib/postgresql/<major>/bin`` that has ``initdb`` and ``postgres``."""
    found = [
        p
        for p in Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/"))
        if (p / "initdb").is_file() and (p / "postgres").is_file()
    ]
    if not found:
        raise ToolMissingError("PostgreSQL server (initdb, postgres)", POSTGRES_BIN_GLOB, "postgres")
    return max(found, key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
