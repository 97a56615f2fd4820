"""Giving freed memory back to the system between batches.

glibc keeps the memory of freed large blocks in its per-thread arenas; with PyTorch's CPU
threads and batches of varying size that memory fragments and the resident size only grows —
validating a MARS-sized split kept 1 GB it no longer used (``bench/mars.py``). ``malloc_trim``
hands the free pages back. Elsewhere (macOS, Windows, musl) this does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys


@functools.lru_cache(maxsize=1)
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def release_free_memory() -> bool:
    """Return free heap pages to the system (glibc ``malloc_trim``); True when it could."""
    libc = _libc()
    if libc is None:
        return False
    libc.malloc_trim(0)
    return True
