"""The C heap's free memory goes back to the system where the C library can do it."""

from __future__ import annotations

import platform
import sys

import pytest

from charging_analytics.operator import memory


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc", reason="glibc only"
)
def test_on_glibc_the_free_heap_is_trimmed() -> None:
    assert memory._malloc_trim() is not None
    freed = [bytearray(64 * 1024) for _ in range(256)]  # 16 MiB of heap (under the mmap threshold)
    del freed
    assert memory.release_free_memory() is True


def test_without_malloc_trim_nothing_is_released(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_TRIM", None)
    assert memory.release_free_memory() is False


def test_a_c_library_without_malloc_trim_is_detected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory.sys, "platform", "darwin")
    assert memory._malloc_trim() is None
