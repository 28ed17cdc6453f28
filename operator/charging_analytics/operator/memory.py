"""Handing the C heap's free memory back to the system after a large read.

A catalog read of a large endpoint passes its whole result through libpq, which holds it in
C memory (several MiB at a thousand tenants) until the rows are converted. glibc's allocator
keeps what is freed for later allocations rather than returning it, so the process's resident
size after a burst of applies and reads stays at its high-water mark: about 20 MiB above what
it holds at a thousand tenants, measured on the fleet benchmark. ``malloc_trim`` returns those
pages (a few milliseconds for a heap of a few hundred MiB).
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (not Linux, or musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim = ctypes.CDLL(None).malloc_trim  # the process's own C library
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _malloc_trim()


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system; whether any were (False where the C
    library cannot)."""
    if _TRIM is None:
        return False
    return bool(_TRIM(0))
