"""Citations of the docs point at sections that exist, and nothing cites a file outside the repository.

Code, tests and docs cite facts as ``docs/<name>.md §N`` (mostly ``docs/risingwave.md``). A file
that cites ``docs/risingwave.md`` also uses bare ``§N`` for the same document, so those must exist
there too. A section exists when the document has a heading ``## §N. ...``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

SELF = Path(__file__).resolve()
ROOT = SELF.parents[2]
DOCS = ROOT / "docs"
RISINGWAVE_DOC = "risingwave.md"

#: Directories that hold no sources of the project (caches, virtualenvs, build output).
SKIPPED_DIRS = {
    ".git",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".venv",
    "node_modules",
    "build",
    "dist",
}

#: Notes that are not part of the repository: nothing may cite them, by name or by path. (This
#: file, whose examples cite on purpose, is not scanned.)
FOREIGN_NAMES = (
    "risingwave-sql",
    "analytics-semantics",
    "operator-anchors",
    "test-infrastructure.md",
    "ocpp.md",
    "/work/shared",
)

_HEADING = re.compile(r"^#{1,6}\s+§(\d+)\b", re.MULTILINE)
#: ``docs/x.md §3``, ``docs/x.md §3, §4``, ``docs/x.md §1/§6``, ``docs/x.md §10 and §11``
_CITATION = re.compile(r"docs/([\w.-]+\.md)\s*((?:§\d+)(?:\s*(?:,|/|and|or)\s*§\d+)*)")
_BARE = re.compile(r"(?<![\w.§])§(\d+)(?![\d.]*\d)")


def _files() -> Iterator[Path]:
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if any(part in SKIPPED_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if path.is_file() and path != SELF:
            yield path


def _text(path: Path) -> str | None:
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _sections(doc: str) -> set[int]:
    path = DOCS / doc
    if not path.is_file():
        return set()
    return {int(n) for n in _HEADING.findall(path.read_text(encoding="utf-8"))}


def _dangling() -> list[str]:
    """Every cited section that its document lacks, as ``file:line: citation``."""
    sections: dict[str, set[int]] = {}
    out: list[str] = []
    for path in _files():
        text = _text(path)
        if text is None:
            continue
        rel = path.relative_to(ROOT).as_posix()
        cites_rw = f"docs/{RISINGWAVE_DOC}" in text and rel != f"docs/{RISINGWAVE_DOC}"
        for lineno, line in enumerate(text.splitlines(), 1):
            cited: list[tuple[str, int]] = []
            for m in _CITATION.finditer(line):
                cited += [(m.group(1), int(n)) for n in re.findall(r"§(\d+)", m.group(2))]
            if cites_rw or rel == f"docs/{RISINGWAVE_DOC}":
                rest = _CITATION.sub("", line)
                cited += [(RISINGWAVE_DOC, int(n)) for n in _BARE.findall(rest)]
            for doc, n in cited:
                have = sections.setdefault(doc, _sections(doc))
                if n not in have:
                    out.append(f"{rel}:{lineno}: docs/{doc} §{n}")
    return out


def test_every_cited_docs_section_exists() -> None:
    assert _dangling() == []


def test_the_risingwave_doc_has_the_sections_the_code_cites() -> None:
    assert _sections(RISINGWAVE_DOC) == set(range(14))


def test_the_citation_check_finds_a_missing_section(tmp_path: Path) -> None:
    line = "see docs/risingwave.md §3, §99 and docs/nothing.md §1"
    found = [
        (m.group(1), int(n)) for m in _CITATION.finditer(line) for n in re.findall(r"§(\d+)", m.group(2))
    ]
    assert found == [("risingwave.md", 3), ("risingwave.md", 99), ("nothing.md", 1)]
    have = _sections("risingwave.md")
    assert [c for c in found if c[1] not in (have if c[0] == "risingwave.md" else set())] == [
        ("risingwave.md", 99),
        ("nothing.md", 1),
    ]


def test_nothing_cites_notes_outside_the_repository() -> None:
    hits = []
    for path in _files():
        text = _text(path)
        if text is None:
            continue
        for lineno, line in enumerate(text.splitlines(), 1):
            hits += [f"{path.relative_to(ROOT)}:{lineno}: {name}" for name in FOREIGN_NAMES if name in line]
    assert hits == []
