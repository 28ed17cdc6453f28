"""The wheel carries every SQL template, and an installed copy renders from its own package data
(no source checkout, no environment variable)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from charging_analytics.templates import Templates

ROOT = Path(__file__).resolve().parents[2]
#: What the wheel is built from (the Dockerfile's build stage copies the same).
SOURCES = ("pyproject.toml", "README.md", "operator", "sql")

_LOAD_ALL = """
import json, sys
import charging_analytics
from charging_analytics.templates import PACKAGED
texts = {name: PACKAGED.one(name).as_string(None) for name in PACKAGED.names()}
json.dump({"package": charging_analytics.__file__, "templates": texts}, sys.stdout)
"""


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    out = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=240
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built offline (build dependencies already installed) from a copy of the sources."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(path, src / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(path, src / name)
    dist = tmp_path_factory.mktemp("dist")
    _run("-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(dist), ".",
         cwd=src)  # fmt: skip
    (built,) = dist.glob("*.whl")
    return built


def test_the_wheel_contains_every_template_of_sql(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        shipped = {Path(n).stem for n in archive.namelist() if n.startswith("charging_analytics/sql/")}
        assert all(n.endswith(".sql") for n in archive.namelist() if n.startswith("charging_analytics/sql/"))
    in_repository = {p.stem for p in (ROOT / "sql").glob("*.sql")}
    assert len(in_repository) > 20
    assert shipped == in_repository


def test_an_installed_wheel_loads_every_template_from_its_own_package(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    _run("-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target), str(wheel),
         cwd=tmp_path)  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(target)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    loaded = json.loads(_run("-c", _LOAD_ALL, cwd=elsewhere, env=env))
    assert Path(loaded["package"]).is_relative_to(target)
    repository = Templates.directory(ROOT / "sql")
    assert sorted(loaded["templates"]) == repository.names()
    for name, text in loaded["templates"].items():
        assert text == repository.one(name).as_string(None), name
