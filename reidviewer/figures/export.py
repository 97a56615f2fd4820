"""One entry point for every figure, shared by the app and the CLI.

``export_figure`` builds a figure from a results file and writes it as PDF, SVG or PNG;
``render_png`` draws the very same figure into memory for the app's preview. Both go through
``build_figure`` under ``paper_style``, so a figure exported from the command line and one
saved from the app for the same query and options are the same drawing.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from matplotlib.figure import Figure

from reidviewer import __version__
from reidviewer.figures.options import KINDS, FigureError, FigureOptions, format_of
from reidviewer.figures.style import paper_style
from reidviewer.workspace import atomic_write_with

if TYPE_CHECKING:
    from reidviewer.data.dataset import VideoDataset
    from reidviewer.engine.results import Results



def _as_list(results: Any) -> list[Results]:
    if isinstance(results, (list, tuple)):
        return list(results)
    return [results]


def check_dataset(dataset: VideoDataset, results: Results) -> None:
    """Raise ``FigureError`` when ``results`` was not computed on ``dataset``.

    The tracklet indices of a results file are positions in one dataset; drawn against another
    they would show the wrong people. Keys are compared where the results file stores them.
    """
    n = len(dataset.tracklets)
    for name, idx, keys in (("query", results.query_indices, results.query_keys),
                            ("gallery", results.gallery_indices, results.gallery_keys)):
        if len(idx) and (int(idx.min()) < 0 or int(idx.max()) >= n):
            raise FigureError(dataset.root, f"the results' {name} tracklets do not exist in this dataset "
                              f"({n} tracklets); the results were computed on another dataset")
        for i, key in zip(idx[:50], keys[:50]):  # a sample is enough to catch the wrong dataset
            if key and dataset.tracklets[int(i)].key != key:
                raise FigureError(dataset.root, f"the results' tracklet {int(i)} is {key!r} but the dataset's is "
                                  f"{dataset.tracklets[int(i)].key!r}; the results were computed on another dataset")


def build_figure(kind: str, dataset: VideoDataset | None, results: Results | Sequence[Results],
                 options: FigureOptions) -> Figure:
    """Build the figure of ``kind`` (call inside ``paper_style()``; ``export_figure`` does).

    Args:
        kind: ``ranking``, ``failures``, ``attention``, ``cmc`` or ``compare``.
        dataset: the dataset the results were computed on (not needed for ``cmc``).
        results: one ``Results``; for ``cmc`` one or several (one curve each); for ``compare``
            two (A, then B).
        options: what to show and how big.

    Raises:
        FigureError: an unknown kind, bad options, or results that do not fit the dataset.
    """
    if kind not in KINDS:
        raise FigureError("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
    options.check()
    many = _as_list(results)
    if not many:
        raise FigureError("results", "no results to draw")
    if kind == "cmc":
        from reidviewer.figures.cmc import build_cmc

        return build_cmc(many, options)
    if kind == "compare":
        if len(many) != 2:
            raise FigureError("results", f"a compare figure draws two results (A and B), got {len(many)}")
        if dataset is None:
            raise FigureError("dataset", "a compare figure shows frames and needs the dataset (--root)")
        check_dataset(dataset, many[0])
        from reidviewer.figures.compare import build_compare

        return build_compare(dataset, many[0], many[1], options)
    if dataset is None:
        raise FigureError("dataset", f"a {kind} figure shows frames and needs the dataset (--root)")
    check_dataset(dataset, many[0])
    if kind == "ranking":
        from reidviewer.figures.ranking import build_ranking

        return build_ranking(dataset, many[0], options)
    if kind == "failures":
        from reidviewer.figures.failures import build_failures

        return build_failures(dataset, many[0], options)
    from reidviewer.figures.attention import build_attention

    return build_attention(dataset, many[0], options)


def _metadata(fmt: str) -> dict[str, Any]:
    """File metadata without dates, so the same figure always gives the same bytes."""
    creator = f"reidviewer {__version__}"
    if fmt == "pdf":
        return {"Creator": creator, "CreationDate": None}
    if fmt == "svg":
        return {"Creator": creator, "Date": None}
    return {"Software": creator}


def _native_images(fig: Figure) -> None:
    """Embed frames and heat rows at their own resolution in vector files.

    Resampled at the output dpi, the frames would make a PDF several times larger and no
    sharper; embedded as they are, the viewer scales them and the heat rows keep crisp cells.
    """
    from matplotlib.image import AxesImage

    for im in fig.findobj(AxesImage):
        im.set_interpolation("none")


def save_figure(fig: Figure, path: str | Path, dpi: int) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix) atomically; call inside ``paper_style()``."""
    path = Path(path)
    fmt = format_of(path)
    if fmt in ("pdf", "svg"):
        _native_images(fig)

    def write(tmp: Path) -> None:
        fig.savefig(tmp, format=fmt, dpi=dpi, metadata=_metadata(fmt))

    try:
        atomic_write_with(path, write)
    except OSError as exc:
        raise FigureError(path, f"cannot be written ({exc.strerror or exc})") from None
    return path


def export_figure(kind: str, dataset: VideoDataset | None, results: Results | Sequence[Results],
                  path: str | Path, options: FigureOptions | None = None) -> Path:
    """Build a figure and write it to ``path`` as PDF, SVG or PNG (by suffix).

    PDFs embed DejaVu Sans as TrueType, SVGs keep text editable, PNGs are
    ``width × options.dpi`` pixels wide. The write is atomic.

    Args:
        kind: ``ranking``, ``failures``, ``attention`` or ``cmc``.
        dataset: the dataset the results were computed on (may be None for ``cmc``).
        results: one ``Results``; for ``cmc`` one or several.
        path: the file to write (``.pdf``, ``.svg`` or ``.png``).
        options: what to show and how big (default ``FigureOptions()``).

    Returns:
        ``path``.

    Raises:
        FigureError: bad options, unsupported file type, unwritable file, results that do not fit.
    """
    options = options or FigureOptions()
    format_of(path)  # refuse a bad suffix before the work
    with paper_style():
        fig = build_figure(kind, dataset, results, options)
        return save_figure(fig, path, options.dpi)


def render_png(kind: str, dataset: VideoDataset | None, results: Results | Sequence[Results],
               options: FigureOptions | None = None, dpi: int | None = None) -> bytes:
    """The figure as PNG bytes in memory (the app's preview), at ``dpi`` (default ``options.dpi``)."""
    options = options or FigureOptions()
    with paper_style():
        fig = build_figure(kind, dataset, results, options)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi or options.dpi, metadata=_metadata("png"))
    return buf.getvalue()
