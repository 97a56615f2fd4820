"""Helpers shared by the benchmark scripts (``bench/*.py`` import it as ``_common``: a script's
own folder is first on ``sys.path``)."""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def best_rate(fn: Callable[[], Any], work: float, repeats: int) -> float:
    """Best ``work / seconds`` over ``repeats`` timed calls of ``fn()``, after one warm-up call
    (the best run is the one least disturbed by other load)."""
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return work / best
