"""What a figure shows and how big it is: ``FigureOptions``, size parsing, query selection."""
from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any


from reidviewer.errors import ReidViewerError
from reidviewer.figures.style import SIZE_PRESETS

if TYPE_CHECKING:
    from reidviewer.data.dataset import VideoDataset
    from reidviewer.engine.results import Results

#: The figure kinds, in the order the app lists them.
KINDS = ("ranking", "failures", "attention", "cmc", "compare")
#: Output formats, by file suffix.
FORMATS = {".pdf": "pdf", ".svg": "svg", ".png": "png"}
#: How many queries a figure shows when none are named.
DEFAULT_COUNT = {"ranking": 4, "failures": 4, "attention": 1, "cmc": 0, "compare": 2}
#: Default frames per tracklet: one thumbnail in a ranked list, a short strip elsewhere.
DEFAULT_FRAMES = {"ranking": 1, "failures": 4, "attention": 8, "cmc": 0, "compare": 1}


class FigureError(ReidViewerError):
    """A figure cannot be made as asked (bad option, unknown query, unsupported file type).

    Args:
        what: the file or option at fault.
        problem: what is wrong, in plain words.
    """

    def __init__(self, what: str | Path, problem: str) -> None:
        self.what = str(what)
        self.problem = problem
        super().__init__(f"{what}: {problem}")


@dataclass(frozen=True)
class FigureOptions:
    """Everything that decides a figure's drawing (the file format aside).

    The same options give the same drawing from the CLI and from the app.

    Attributes:
        size: ``"single"`` (3.3 in), ``"double"`` (6.9 in), ``"W"`` or ``"WxH"`` in inches.
            Without a height the figure is as tall as its content needs.
        dpi: resolution of PNG output (and of the frames embedded in PDF/SVG).
        top_k: gallery items per probe in a ranking figure.
        frames: frames shown per tracklet (0: the kind's default: 1 in rankings, 4 in failure
            cases, 8 in attention strips).
        queries: query rows to show; empty: chosen by ``select`` and ``count``.
        select: how queries are chosen when none are named: ``"first"`` (the first ``count``
            queries with a true match) or ``"failures"`` (the ``count`` worst failures).
        count: how many queries ``select`` picks (0: the kind's default).
        show_ranks: rank numbers above the gallery items.
        show_distances: distances under the gallery items.
        show_true_match: in a ranking, the first true match after the top-k when it ranks lower.
        compare: attention strips: also show a gallery tracklet: ``"top1"``, ``"match"`` (the
            first true match), or ``"none"``.
        gallery_row: attention strips: this gallery row instead of ``compare`` (the app's
            current gallery item).
        show_occlusion: attention strips: a row with the recorded occlusion (SynthWalk).
        attention_scale: attention strips: ``"fixed"`` (α on 0–1, as the app shows it) or
            ``"stretch"`` (the figure's own min–max, for nearly uniform attention).
        labels: cmc curves: one legend label per results (default: from the results files).
        max_rank: cmc curves: last rank on the x axis.
    """

    size: str = "single"
    dpi: int = 300
    top_k: int = 5
    frames: int = 0
    queries: tuple[int, ...] = ()
    select: str = "first"
    count: int = 0
    show_ranks: bool = True
    show_distances: bool = True
    show_true_match: bool = True
    compare: str = "none"
    gallery_row: int | None = None
    show_occlusion: bool = True
    attention_scale: str = "fixed"
    labels: tuple[str, ...] = ()
    max_rank: int = 20

    def replace(self, **changes: Any) -> FigureOptions:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def frames_for(self, kind: str) -> int:
        """Frames per tracklet for ``kind`` (the option, or the kind's default)."""
        return self.frames if self.frames > 0 else DEFAULT_FRAMES.get(kind, 1)

    def count_for(self, kind: str) -> int:
        """Queries ``select`` picks for ``kind`` (the option, or the kind's default)."""
        return self.count if self.count > 0 else DEFAULT_COUNT.get(kind, 1)

    def check(self) -> None:
        """Raise ``FigureError`` for options out of range."""
        figure_size(self.size)
        if not 20 <= self.dpi <= 2400:
            raise FigureError("--dpi", f"{self.dpi} is out of range (20..2400)")
        if not 1 <= self.top_k <= 50:
            raise FigureError("--top-k", f"{self.top_k} is out of range (1..50)")
        if not 0 <= self.frames <= 64:
            raise FigureError("--frames", f"{self.frames} is out of range (1..64)")
        if self.count < 0 or self.count > 200:
            raise FigureError("--count", f"{self.count} is out of range (1..200)")
        if self.select not in ("first", "failures"):
            raise FigureError("select", f"{self.select!r} is not 'first' or 'failures'")
        if self.compare not in ("none", "top1", "match"):
            raise FigureError("--compare", f"{self.compare!r} is not none, top1 or match")
        if self.attention_scale not in ("fixed", "stretch"):
            raise FigureError("--attention-scale", f"{self.attention_scale!r} is not fixed or stretch")
        if not 1 <= self.max_rank <= 1000:
            raise FigureError("--max-rank", f"{self.max_rank} is out of range (1..1000)")


_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(?:[x×]\s*(\d+(?:\.\d*)?|\.\d+))?\s*(?:in)?\s*$", re.IGNORECASE)


def figure_size(size: str) -> tuple[float, float | None]:
    """``(width, height or None)`` in inches from ``single``, ``double``, ``W`` or ``WxH``.

    Raises:
        FigureError: an unknown preset, or a size outside 1..30 inches.
    """
    key = str(size).strip().lower()
    if key in SIZE_PRESETS:
        return SIZE_PRESETS[key], None
    m = _SIZE.match(key)
    if not m:
        raise FigureError("--size", f"{size!r} is not single, double, W or WxH (inches, e.g. 5x3)")
    w = float(m.group(1))
    h = float(m.group(2)) if m.group(2) else None
    for v in (w, h):
        if v is not None and not 1.0 <= v <= 30.0:
            raise FigureError("--size", f"{size!r}: sizes must be 1 to 30 inches")
    return w, h


def format_of(path: str | Path) -> str:
    """``pdf``, ``svg`` or ``png`` from a file name; ``FigureError`` for anything else."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise FigureError(path, "unsupported figure format; use a .pdf, .svg or .png file name")
    return fmt


def parse_queries(tokens: Sequence[str] | str, dataset: VideoDataset | None, results: Results) -> tuple[int, ...]:
    """Query rows from what a user types: query rows (``0``, ``12``) or person names.

    Tokens may be comma- or space-separated. A number is a query row (``0 .. Nq-1``). Anything
    else is matched against the query tracklets' person names (``person007``; every query
    tracklet of that person is taken), then their tracklet keys.

    Raises:
        FigureError: a row out of range or a name no query tracklet has.
    """
    if isinstance(tokens, str):
        tokens = [tokens]
    words = [w for t in tokens for w in re.split(r"[,\s]+", str(t)) if w]
    rows: list[int] = []
    nq = results.num_queries
    for w in words:
        if re.fullmatch(r"\d+", w):
            r = int(w)
            if not 0 <= r < nq:
                raise FigureError("--queries", f"query row {r} is out of range (0..{nq - 1})")
            rows.append(r)
            continue
        found = []
        if dataset is not None:
            tr = dataset.tracklets
            found = [r for r in range(nq) if tr[int(results.query_indices[r])].person == w]
        if not found:
            found = [r for r in range(nq) if results.query_keys[r] == w]
        if not found:
            raise FigureError("--queries", f"no query tracklet of person {w!r} (give a query row or a person name)")
        rows.extend(found)
    # Keep the order the user gave, without repeats.
    return tuple(dict.fromkeys(rows))


def select_queries(kind: str, results: Results, options: FigureOptions) -> list[int]:
    """The query rows a figure shows: ``options.queries``, else chosen by ``select``/``count``.

    Failure figures always show failures: named queries whose rank-1 is right are dropped
    (and if none is left, ``FigureError`` says so).
    """
    n = options.count_for(kind)
    if options.queries:
        rows = [int(r) for r in options.queries]
        for r in rows:
            if not 0 <= r < results.num_queries:
                raise FigureError("queries", f"query row {r} is out of range (0..{results.num_queries - 1})")
        if kind == "failures":
            bad = set(int(r) for r in results.failures())
            rows = [r for r in rows if r in bad]
            if not rows:
                raise FigureError("queries", "none of the named queries is a failure (their rank-1 is right)")
        return rows
    if kind == "failures" or options.select == "failures":
        rows = [int(r) for r in results.failures()[:n]]
        if not rows:
            raise FigureError("queries", "there are no failure cases: every query's rank-1 is a true match")
        return rows
    import numpy as np

    valid = np.flatnonzero(results.valid)
    if not len(valid):
        raise FigureError("queries", "no query has a true match in the gallery")
    return [int(r) for r in valid[:n]]
