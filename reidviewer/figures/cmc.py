"""CMC curves: several results (checkpoints, heads, refinement iterations) overlaid.

Each curve is the ``Results.cmc`` the Metrics panel shows, in percent, with its rank-1 in the
legend. Curves differ in colour, line style *and* marker, so they stay apart in greyscale.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from reidviewer.figures.options import FigureError, FigureOptions, figure_size
from reidviewer.figures.style import ITERATION_COLORS, LINE_STYLES, MARKERS

if TYPE_CHECKING:
    from reidviewer.engine.results import Results


def default_label(results: Results, i: int) -> str:
    """A curve's name: the checkpoint's file name, else the dataset and split, else ``results N``."""
    ck = results.settings.get("checkpoint") if isinstance(results.settings, dict) else None
    if ck:
        return Path(str(ck)).stem
    if results.dataset_name:
        return f"{results.dataset_name} split {results.split}"
    return f"results {i + 1}"


def curve_labels(results: Sequence[Results], labels: Sequence[str]) -> list[str]:
    """Given labels first, defaults for the rest; repeated names get a number."""
    out = [labels[i] if i < len(labels) and labels[i] else default_label(r, i) for i, r in enumerate(results)]
    seen: dict[str, int] = {}
    for name in out:
        seen[name] = seen.get(name, 0) + 1
    count: dict[str, int] = {}
    for i, name in enumerate(out):
        if seen[name] > 1:
            count[name] = count.get(name, 0) + 1
            out[i] = f"{name} ({count[name]})"
    return out


def build_cmc(results: Sequence[Results], options: FigureOptions) -> Figure:
    """CMC curves of one or several results; see the module docstring.

    Args:
        results: one ``Results`` per curve.
        options: size (default height: 0.72 × width, at most 3 in), ``labels``, ``max_rank``.
    """
    width, height = figure_size(options.size)
    if height is None:
        height = min(width * 0.72, 3.0)
    names = curve_labels(results, options.labels)
    fig = Figure(figsize=(width, height), layout="constrained")
    fig.get_layout_engine().set(w_pad=0.03, h_pad=0.03)
    ax = fig.add_subplot()
    n_max = 1
    lowest = 100.0
    for i, (r, name) in enumerate(zip(results, names)):
        if not np.any(r.valid):
            raise FigureError(name, "no query of these results has a true match; there is no CMC curve")
        cmc = np.asarray(r.cmc, dtype=np.float64) * 100.0
        n = min(options.max_rank, len(cmc))
        x = np.arange(1, n + 1)
        marks = [j for j in range(n) if j == 0 or (j + 1) % 5 == 0]
        ax.plot(x, cmc[:n], color=ITERATION_COLORS[i % len(ITERATION_COLORS)],
                linestyle=LINE_STYLES[i % len(LINE_STYLES)], marker=MARKERS[i % len(MARKERS)],
                markevery=marks, label=f"{name} (R1 {cmc[0]:.1f}%)", clip_on=False, zorder=3)
        n_max = max(n_max, n)
        lowest = min(lowest, float(cmc[:n].min()))
    ax.set_xlabel("Rank")
    ax.set_ylabel("Matching rate (%)")
    ax.set_xlim(1, max(2, n_max))
    ax.set_ylim(max(0.0, np.floor(lowest / 10.0) * 10.0 - (5.0 if lowest % 10 < 2 else 0.0)), 100.0)
    if n_max <= 20:
        ticks = [1] + list(range(5, n_max + 1, 5))
        ax.set_xticks(ticks if ticks[-1] == n_max or n_max < 5 else ticks + [n_max])
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.grid(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.legend(loc="lower right", handlelength=2.6)
    return fig
