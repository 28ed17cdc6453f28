"""The operator process's garbage collection: young collections rarer, start-up's heap frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from charging_analytics.operator.main import GC_YOUNG_THRESHOLD, tune_gc


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_the_operator_collects_young_objects_less_often_and_freezes_its_start_up_heap(
    restored_gc: None,
) -> None:
    _, middle, old = gc.get_threshold()
    gc.unfreeze()
    tune_gc()
    assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, middle, old)
    assert GC_YOUNG_THRESHOLD > 700  # Python's default
    assert gc.get_freeze_count() > 0
