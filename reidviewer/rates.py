"""Throughputs measured on this machine, kept in the workspace for the next estimate.

A cost told before it is paid (``reidviewer info``, ``evaluate``'s first line, the app's question
before an expensive open) is only as good as its rate, and rates differ by 2x between hosts and
by 10x between a CPU and a GPU. So long runs write what they measured into a small JSON file of
``{key: frames per second}``, and estimates read it back. The files are caches: written
atomically, and a missing, damaged or hostile one counts as "nothing measured".
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from reidviewer.workspace import WorkspaceError, atomic_write_json

#: The key that also holds the latest measurement, for a lookup whose own key has none yet.
LAST = "last"


def read_rates(path: Path) -> dict[str, float]:
    """The finite, positive rates in ``path`` by key; a missing or damaged file gives ``{}``."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    if not isinstance(doc, dict):
        return {}
    rates = {}
    for key, value in doc.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                rate = float(value)  # an integer too large for a float raises
            except OverflowError:
                continue
            if math.isfinite(rate) and rate > 0:
                rates[str(key)] = rate
    return rates


def record_rate(path: Path, key: str, frames: int, seconds: float, also_last: bool = True) -> None:
    """Remember ``frames / seconds`` under ``key`` (and as ``LAST`` with ``also_last``).

    A folder that cannot be written keeps its old figures: the work itself is what matters.
    """
    if seconds <= 0 or frames <= 0:
        return
    rates = read_rates(path)
    rates[key] = round(frames / seconds, 1)
    if also_last:
        rates[LAST] = rates[key]
    try:
        atomic_write_json(path, rates)
    except (WorkspaceError, OSError):
        pass


def measured_rate(path: Path, key: str | None, fall_back_to_last: bool = True) -> float | None:
    """The rate measured under ``key`` (else the latest one, when allowed); None if none."""
    rates = read_rates(path)
    if key in rates:
        return rates[key]
    return rates.get(LAST) if fall_back_to_last else None
