"""The SQL templates: loaded by name, the leading comment stripped (it documents the file; it is
not sent).

The templates are package data: the repository's top-level ``sql/`` folder is linked into the
package as ``charging_analytics/sql`` and shipped in the wheel, so a source checkout, an editable
install and an installed wheel (the image) all read them through the package, with no path or
environment variable to configure. :data:`PACKAGED` is that set; a test may render with another
:class:`Templates` (a copy with a planted mistake) through ``RenderOptions``.
"""

from __future__ import annotations

import functools
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from psycopg import sql


class Templates:
    """One folder of ``<name>.sql`` templates; each file is read once."""

    def __init__(self, root: Traversable) -> None:
        self.root = root

    @classmethod
    def packaged(cls) -> Templates:
        return cls(resources.files(__package__) / "sql")

    @classmethod
    def directory(cls, path: Path) -> Templates:
        return cls(path)

    def names(self) -> list[str]:
        """Every template's name, sorted."""
        return sorted(p.name.removesuffix(".sql") for p in self.root.iterdir() if p.name.endswith(".sql"))

    def one(self, name: str) -> sql.SQL:
        return sql.SQL(self._text(name))

    def several(self, name: str) -> list[sql.SQL]:
        """A template of several statements, each ending with ``;`` at the end of a line."""
        return [sql.SQL(part.strip()) for part in self._text(name).split(";\n") if part.strip()]

    @functools.cache  # noqa: B019 - a handful of long-lived instances, the texts are small
    def _text(self, name: str) -> str:
        lines = (self.root / f"{name}.sql").read_text(encoding="utf-8").splitlines()
        while lines and (lines[0].startswith("--") or not lines[0].strip()):
            lines.pop(0)  # the leading comment documents the file; it is not sent
        return "\n".join(lines).strip().rstrip(";")


#: The templates shipped with the package.
PACKAGED = Templates.packaged()


def template(name: str) -> sql.SQL:
    """A packaged template of one statement."""
    return PACKAGED.one(name)

