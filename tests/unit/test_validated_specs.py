"""The operator validates a resource's spec again only when it changed, and what it keeps to tell
is the watched body's own values, not a copy per tenant; a newer body with the same spec releases
the older one."""

from __future__ import annotations

import copy
import gc
import weakref
from pathlib import Path
from typing import Any

import yaml

from charging_analytics.operator.quiet import ValidatedSpecs

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "voltbay.yaml"


class Tracked(dict[str, Any]):
    """A spec section that can be weakly referenced, to see whether anything keeps it alive."""


def _body_spec() -> dict[str, Any]:
    """A freshly parsed spec, as each watch event brings one, with its sections tracked."""
    docs = yaml.safe_load_all(EXAMPLE.read_text())
    spec = next(d for d in docs if d and d.get("kind") == "ChargingAnalytics")["spec"]
    return {k: Tracked(v) if isinstance(v, dict) else v for k, v in copy.deepcopy(spec).items()}


def test_an_unchanged_spec_is_validated_once_and_a_changed_one_again() -> None:
    specs = ValidatedSpecs()
    first = specs.model("ns/a", _body_spec())
    assert specs.model("ns/a", _body_spec()) is first
    changed = _body_spec()
    changed["tenant"] = "other"
    assert specs.model("ns/a", changed).tenant == "other"


def test_the_kept_spec_is_the_bodys_own_and_a_newer_equal_body_releases_the_older() -> None:
    specs = ValidatedSpecs()
    older = _body_spec()
    specs.model("ns/a", older)
    section = weakref.ref(older["kafka"])
    del older
    gc.collect()
    assert section() is not None  # kept as the body's own value, not a deep copy of it

    newer = _body_spec()
    specs.model("ns/a", newer)
    gc.collect()
    assert section() is None  # the newer body's equal spec took its place

    specs.forget("ns/a")
    kept = weakref.ref(newer["kafka"])
    del newer
    gc.collect()
    assert kept() is None
