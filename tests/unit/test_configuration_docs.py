"""README's "Operator configuration" names every setting with its default, and every metric."""

from __future__ import annotations

import re
from pathlib import Path

from prometheus_client.metrics import MetricWrapperBase

from charging_analytics.cli import build_parser
from charging_analytics.operator import metrics
from charging_analytics.operator.settings import OperatorSettings

ROOT = Path(__file__).resolve().parents[2]
#: The words README uses for a setting whose default is empty.
EMPTY = {"all", "none"}


def _section() -> str:
    readme = ROOT.joinpath("README.md").read_text(encoding="utf-8")
    return readme.split("## Operator configuration", 1)[1].split("\n## ", 1)[0]


def _documented_defaults() -> dict[str, str | None]:
    """``CHA_X`` -> the first word of the bracket after it (None: no bracket). Names joined by
    ``/`` share one bracket; a name inside a bracket explains it and is not listed."""
    settings = _section().split("Metrics:", 1)[0]
    pieces = re.split(r"(\[[^\]]*\])", settings)
    found: dict[str, str | None] = {}
    for i in range(0, len(pieces), 2):
        bracket = pieces[i + 1][1:-1] if i + 1 < len(pieces) else None
        *listed, last = pieces[i].split(",")
        for chunk, default in [*((c, None) for c in listed), (last, bracket)]:
            for name in re.findall(r"`(CHA_[A-Z_]+)`", chunk):
                found[name] = None if default is None else re.split(r"[:,|]", default, maxsplit=1)[0].strip()
    return found


def test_readme_lists_exactly_the_operator_settings() -> None:
    documented = set(_documented_defaults())
    assert documented == {f"CHA_{name.upper()}" for name in OperatorSettings.model_fields}


def test_readme_gives_each_setting_its_default_and_none_where_there_is_none() -> None:
    for env, word in _documented_defaults().items():
        name = env[4:].lower()
        default = OperatorSettings.model_fields[name].default
        if word is None:
            assert default is None, f"README gives {env} no default; its default is {default!r}"
        elif word in EMPTY:
            assert default in (None, ""), f"README says {env} is empty by default; it is {default!r}"
        else:
            assert getattr(OperatorSettings(**{name: word}), name) == default, f"README's default of {env}"


def _metrics() -> dict[str, MetricWrapperBase]:
    found = {}
    for metric in vars(metrics).values():
        if isinstance(metric, MetricWrapperBase):
            (family,) = metric.describe()
            suffix = "_total" if family.type == "counter" else ""
            found[family.name + suffix] = metric
    return found


def test_readme_lists_exactly_the_operators_metrics_with_labels_they_have() -> None:
    text = _section().split("Metrics:", 1)[1].split("Liveness:", 1)[0]
    listed = dict(re.findall(r"`(cha_[a-z_]+)(?:\{([a-z_,]+)\})?`", text))
    registered = _metrics()
    assert set(listed) == set(registered)
    for name, labels in listed.items():
        assert set(filter(None, labels.split(","))) <= set(registered[name]._labelnames), name


def test_readme_names_the_liveness_endpoint_the_operator_serves_by_default() -> None:
    (path, port) = re.findall(r"Liveness: `(/\w+)` on port (\d+)", _section())[0]
    assert build_parser().parse_args(["operator"]).liveness.endswith(f":{port}{path}")
