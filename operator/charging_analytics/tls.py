"""TLS material from a referenced Secret (``tlsSecretRef``), and how each client library takes it.

The material is Secret content: it is treated like a password everywhere (never in ``repr``,
status, Events, logs, plans or CLI output; every value is scrubbed from remote error text by
whoever sent it). librdkafka takes PEM strings (``ssl.ca.pem``, ``ssl.certificate.pem``,
``ssl.key.pem``); libpq takes only file paths (``sslrootcert``, ``sslcert``, ``sslkey``), so for
libpq the PEMs are written to private files (mode 0600 in a 0700 directory) that live only as long
as the connection or pool that reads them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from .spec import TlsSecretRef

TlsPart = Literal["ca", "certificate", "private_key"]
TLS_PARTS: tuple[TlsPart, ...] = ("ca", "certificate", "private_key")

#: libpq's connection parameter for each part (https://www.postgresql.org/docs/current/libpq-connect.html).
_LIBPQ: dict[TlsPart, str] = {"ca": "sslrootcert", "certificate": "sslcert", "private_key": "sslkey"}
#: librdkafka's property for each part (librdkafka CONFIGURATION.md; confluent-kafka passes them through).
_LIBRDKAFKA: dict[TlsPart, str] = {
    "ca": "ssl.ca.pem",
    "certificate": "ssl.certificate.pem",
    "private_key": "ssl.key.pem",
}


@dataclass(frozen=True)
class TlsMaterial:
    """PEM texts read from a Secret; a part is None when the reference does not name it."""

    ca: str | None = field(default=None, repr=False)
    certificate: str | None = field(default=None, repr=False)
    private_key: str | None = field(default=None, repr=False)

    def __repr__(self) -> str:
        return f"TlsMaterial(parts={list(self.parts())})"

    def parts(self) -> dict[TlsPart, str]:
        """The parts present, by name."""
        values = {"ca": self.ca, "certificate": self.certificate, "private_key": self.private_key}
        return {p: v for p, v in values.items() if v is not None}  # type: ignore[misc]

    def values(self) -> tuple[str, ...]:
        """Every value, for scrubbing remote text (each line of a PEM is scrubbed too)."""
        return tuple(self.parts().values())

    def digest(self) -> str:
        """Identifies the material (pool keys) without revealing it."""
        h = hashlib.sha256()
        for part, value in sorted(self.parts().items()):
            h.update(f"{part}\0{value}\0".encode())
        return h.hexdigest()

    def librdkafka(self) -> dict[str, str]:
        return {_LIBRDKAFKA[p]: v for p, v in self.parts().items()}


class PemFiles:
    """The material as private files for a library that reads only paths (libpq).

    Created in a fresh 0700 directory, each file 0600 (libpq refuses a key file others can read);
    :meth:`close` removes them. ``libpq()`` gives the connection parameters naming them.
    """

    def __init__(self, material: TlsMaterial | None) -> None:
        self._dir: Path | None = None
        self._paths: dict[TlsPart, Path] = {}
        parts = material.parts() if material is not None else {}
        if not parts:
            return
        self._dir = Path(tempfile.mkdtemp(prefix="cha-tls-"))  # mkdtemp: mode 0700
        try:
            for part, value in parts.items():
                path = self._dir / f"{part}.pem"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    out.write(value)
                self._paths[part] = path
        except BaseException:
            self.close()
            raise

    def libpq(self) -> dict[str, str]:
        return {_LIBPQ[p]: str(path) for p, path in self._paths.items()}

    def close(self) -> None:
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
            self._paths = {}

    def __enter__(self) -> PemFiles:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def libpq_paths(ca: str | None, certificate: str | None, private_key: str | None) -> dict[str, str]:
    """libpq parameters for TLS files that already exist (the operator-wide default endpoint's
    files, mounted from a Secret by the chart)."""
    given: dict[TlsPart, str | None] = {"ca": ca, "certificate": certificate, "private_key": private_key}
    return {_LIBPQ[p]: v for p, v in given.items() if v}


def tls_keys(ref: TlsSecretRef) -> dict[TlsPart, str]:
    """The Secret key of each part of TLS material a reference names, in a fixed order."""
    keys: dict[TlsPart, str | None] = {
        "ca": ref.ca_key,
        "certificate": ref.certificate_key,
        "private_key": ref.private_key_key,
    }
    return {p: key for p in TLS_PARTS if (key := keys[p]) is not None}


def tls_parts(ref: TlsSecretRef | None) -> tuple[TlsPart, ...]:
    """The parts of TLS material a reference names."""
    return tuple(tls_keys(ref)) if ref is not None else ()
