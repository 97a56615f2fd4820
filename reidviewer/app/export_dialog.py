"""File ▸ Export figure: options, a live preview, and Save (PDF, SVG or PNG).

The preview is the figure itself, rendered to PNG in memory with matplotlib's Agg backend in a
worker thread (a figure with dozens of frames takes a few hundred milliseconds) and shown in a
``QLabel``; it is re-rendered shortly after the options stop changing. Save writes the file
with ``reidviewer.figures.export_figure``, the function ``reidviewer export`` calls, so a
figure saved here and one exported from the command line with the same options are the same
drawing.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, QThreadPool, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from reidviewer.app.tasks import Job, start_job
from reidviewer.figures.options import DEFAULT_COUNT, FigureOptions, figure_size

KIND_NAMES = {
    "ranking": "Ranked retrievals",
    "failures": "Failure cases",
    "attention": "Attention strip",
    "cmc": "CMC curves",
}
SIZE_NAMES = {"single": "Single column (3.3 in)", "double": "Double column (6.9 in)", "custom": "Custom"}
FORMAT_NAMES = {"pdf": "PDF", "svg": "SVG", "png": "PNG"}
QUERY_NAMES = {"current": "Current query", "failures": "Worst failures", "first": "First queries"}
SCALE_NAMES = {"fixed": "α on 0–1 (as in the viewer)", "stretch": "Stretched to the figure's range"}
COMPARE_NAMES = {"none": "Nothing", "gallery": "Current gallery item", "top1": "Top-1", "match": "First true match"}
#: Preview width in pixels (the figure is rendered at the dpi that gives it).
PREVIEW_PX = 640
#: Wait this long after the last option change before rendering (typing a number, spinning).
DEBOUNCE_MS = 150


def _combo(items: dict[str, str], current: str) -> QComboBox:
    box = QComboBox()
    for key, text in items.items():
        box.addItem(text, key)
    box.setCurrentIndex(max(0, box.findData(current)))
    return box


class ExportDialog(QDialog):
    """Export a paper figure of the current results.

    Args:
        kind: ``ranking``, ``failures``, ``attention`` or ``cmc`` (the user can change it).
        dataset: the open dataset (``VideoDataset``).
        results: the open ``Results`` (for cmc, one or several).
        query_row: the query shown in the main window (None when none is).
        gallery_row: the gallery item shown beside it (None when none is).
        workspace: the ``Workspace``; files are proposed in its ``figures_dir``.
        parent: the parent widget.
        query_mode: ``current``, ``failures`` or ``first`` (default: ``failures`` for the
            failures kind, else ``current`` when a query is shown).
        count: queries for the ``failures``/``first`` modes (default: the kind's default).

    Signals:
        preview_ready(): a preview was rendered and shown (tests wait on it).
        saved(str): a figure file was written (its path).
        failed(str): rendering or saving failed (the message, also shown in the dialog).
    """

    preview_ready = Signal()
    saved = Signal(str)
    failed = Signal(str)

    def __init__(self, kind: str, dataset: Any, results: Any, query_row: int | None = None,
                 gallery_row: int | None = None, workspace: Any = None, parent: QWidget | None = None,
                 *, query_mode: str | None = None, count: int | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Export figure")
        self.dataset = dataset
        self.results: list[Any] = list(results) if isinstance(results, (list, tuple)) else [results]
        self.query_row = query_row
        self.gallery_row = gallery_row
        self.workspace = workspace
        self.preview_png: bytes = b""
        self.last_saved: Path | None = None
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)  # one render at a time; a newer request waits its turn
        self._generation = 0
        self._rendering: Job | None = None
        self._saving: Job | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._render_preview)

        if query_mode is None:
            query_mode = "failures" if kind == "failures" else ("current" if query_row is not None else "first")
        self._build(kind, query_mode, count)
        self.resize(1000, 700)
        self._sync_enabled()
        self.schedule_preview()

    # ------------------------------------------------------------------ layout
    def _build(self, kind: str, query_mode: str, count: int | None) -> None:
        self.kind_box = _combo(KIND_NAMES, kind)
        self.size_box = _combo(SIZE_NAMES, "single")
        self.width_spin = QDoubleSpinBox()
        self.width_spin.setRange(1.0, 30.0)
        self.width_spin.setSingleStep(0.1)
        self.width_spin.setDecimals(2)
        self.width_spin.setValue(5.0)
        self.width_spin.setSuffix(" in")
        self.height_spin = QDoubleSpinBox()
        self.height_spin.setRange(0.0, 30.0)
        self.height_spin.setSingleStep(0.1)
        self.height_spin.setDecimals(2)
        self.height_spin.setSpecialValueText("auto")
        self.height_spin.setSuffix(" in")
        self.height_spin.setToolTip("0 / auto: as tall as the content needs")
        custom = QHBoxLayout()
        custom.addWidget(self.width_spin)
        custom.addWidget(QLabel("×"))
        custom.addWidget(self.height_spin)
        self.format_box = _combo(FORMAT_NAMES, "pdf")
        self.dpi_spin = QSpinBox()
        self.dpi_spin.setRange(50, 1200)
        self.dpi_spin.setValue(300)
        self.dpi_spin.setToolTip("PNG resolution (and of the frames in PDF/SVG previews)")
        self.topk_spin = QSpinBox()
        self.topk_spin.setRange(1, 20)
        self.topk_spin.setValue(5)
        self.frames_spin = QSpinBox()
        self.frames_spin.setRange(0, 32)
        self.frames_spin.setSpecialValueText("default")
        self.frames_spin.setToolTip("Frames per tracklet (default: 1 in rankings, 4 in failure cases, 8 in attention strips)")
        self.queries_box = _combo(QUERY_NAMES, query_mode)
        self.count_spin = QSpinBox()
        self.count_spin.setRange(1, 50)
        self.count_spin.setValue(count or DEFAULT_COUNT.get(kind, 4) or 4)
        queries = QHBoxLayout()
        queries.addWidget(self.queries_box, 1)
        queries.addWidget(self.count_spin)
        self.compare_box = _combo(COMPARE_NAMES, "gallery" if self.gallery_row is not None else "top1")
        self.scale_box = _combo(SCALE_NAMES, "fixed")
        self.scale_box.setToolTip("Stretch shows the small differences of nearly uniform attention")
        self.ranks_check = QCheckBox("rank numbers")
        self.ranks_check.setChecked(True)
        self.dist_check = QCheckBox("distances")
        self.dist_check.setChecked(True)
        self.add_curve = QPushButton("Add results file…")
        self.add_curve.setToolTip("Overlay the CMC curve of another results file")
        self.add_curve.clicked.connect(self._ask_add_curve)

        form = QFormLayout()
        form.addRow("Figure", self.kind_box)
        form.addRow("Size", self.size_box)
        form.addRow("Custom size", custom)
        form.addRow("Format", self.format_box)
        form.addRow("PNG dpi", self.dpi_spin)
        form.addRow("Queries", queries)
        form.addRow("Top-k", self.topk_spin)
        form.addRow("Frames", self.frames_spin)
        form.addRow("Compare with", self.compare_box)
        form.addRow("Attention colours", self.scale_box)
        labels = QHBoxLayout()
        labels.addWidget(self.ranks_check)
        labels.addWidget(self.dist_check)
        form.addRow("Show", labels)
        form.addRow("", self.add_curve)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setObjectName("export_status")
        self.buttons = QDialogButtonBox()
        self.save_button = self.buttons.addButton("Save…", QDialogButtonBox.ButtonRole.AcceptRole)
        self.save_button.setDefault(True)
        close = self.buttons.addButton(QDialogButtonBox.StandardButton.Close)
        self.save_button.clicked.connect(self._ask_save)
        close.clicked.connect(self.reject)

        side = QVBoxLayout()
        side.addLayout(form)
        side.addStretch(1)
        side.addWidget(self.status)
        side.addWidget(self.buttons)
        side_w = QWidget()
        side_w.setLayout(side)
        side_w.setMaximumWidth(380)

        self.preview = QLabel("rendering…")
        self.preview.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.preview.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.preview.setStyleSheet("background: white; border: 1px solid #bbb;")
        self.scroll = QScrollArea()
        self.scroll.setWidget(self.preview)
        self.scroll.setWidgetResizable(True)
        self.scroll.setMinimumWidth(420)

        layout = QHBoxLayout(self)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(side_w)

        for box in (self.kind_box, self.size_box, self.queries_box, self.compare_box, self.scale_box):
            box.currentIndexChanged.connect(self._options_changed)
        for spin in (self.width_spin, self.height_spin, self.topk_spin, self.frames_spin, self.count_spin):
            spin.valueChanged.connect(self._options_changed)
        for check in (self.ranks_check, self.dist_check):
            check.toggled.connect(self._options_changed)
        # Format and dpi do not change the drawing: no new preview, only the description.
        self.format_box.currentIndexChanged.connect(self._refresh_description)
        self.dpi_spin.valueChanged.connect(self._refresh_description)

    # ------------------------------------------------------------------ options
    @property
    def kind(self) -> str:
        """The figure kind chosen."""
        return str(self.kind_box.currentData())

    @property
    def file_format(self) -> str:
        """``pdf``, ``svg`` or ``png``."""
        return str(self.format_box.currentData())

    def size_text(self) -> str:
        """The size option: ``single``, ``double``, ``W`` or ``WxH``."""
        key = str(self.size_box.currentData())
        if key != "custom":
            return key
        w, h = self.width_spin.value(), self.height_spin.value()
        return f"{w:g}x{h:g}" if h > 0 else f"{w:g}"

    def options(self) -> FigureOptions:
        """The ``FigureOptions`` the widgets describe (what Save will draw)."""
        mode = str(self.queries_box.currentData())
        queries: tuple[int, ...] = ()
        count = 0
        select = "first"
        if mode == "current" and self.query_row is not None:
            queries = (int(self.query_row),)
        elif mode == "failures":
            select, count = "failures", self.count_spin.value()
        else:
            count = self.count_spin.value()
        compare = str(self.compare_box.currentData())
        gallery_row = None
        if compare == "gallery":
            compare = "none"
            gallery_row = self.gallery_row
        return FigureOptions(
            size=self.size_text(),
            dpi=self.dpi_spin.value(),
            top_k=self.topk_spin.value(),
            frames=self.frames_spin.value(),
            queries=queries,
            select=select,
            count=count,
            show_ranks=self.ranks_check.isChecked(),
            show_distances=self.dist_check.isChecked(),
            compare=compare,
            gallery_row=gallery_row if self.kind == "attention" else None,
            attention_scale=str(self.scale_box.currentData()),
        )

    def _sync_enabled(self) -> None:
        kind = self.kind
        custom = self.size_box.currentData() == "custom"
        self.width_spin.setEnabled(custom)
        self.height_spin.setEnabled(custom)
        thumbs = kind != "cmc"
        self.queries_box.setEnabled(thumbs)
        self.count_spin.setEnabled(thumbs and self.queries_box.currentData() != "current")
        self.frames_spin.setEnabled(thumbs)
        self.topk_spin.setEnabled(kind == "ranking")
        self.ranks_check.setEnabled(kind == "ranking")
        self.dist_check.setEnabled(kind in ("ranking", "failures"))
        self.compare_box.setEnabled(kind == "attention")
        self.scale_box.setEnabled(kind == "attention")
        self.add_curve.setVisible(kind == "cmc")

    def _options_changed(self, *_: Any) -> None:
        self._sync_enabled()
        self.schedule_preview()

    # ------------------------------------------------------------------ preview
    def schedule_preview(self) -> None:
        """Re-render the preview once the options have stopped changing for a moment."""
        self._generation += 1
        self._timer.start()

    def _preview_dpi(self) -> int:
        try:
            width, _ = figure_size(self.size_text())
        except Exception:  # noqa: BLE001 - a bad size is reported by the render itself
            width = 3.3
        return int(max(40, min(200, PREVIEW_PX / width)))

    def _render_preview(self) -> None:
        if self._rendering is not None:
            return  # the running render re-schedules when it ends (its generation is stale)
        from reidviewer.figures.export import render_png

        generation = self._generation
        kind, dataset, results, options, dpi = self.kind, self.dataset, list(self.results), self.options(), self._preview_dpi()
        self.status.setText("rendering…")
        job = Job(lambda progress, cancel: render_png(kind, dataset, results, options, dpi))
        job.generation = generation  # type: ignore[attr-defined]
        job.dpi = dpi  # type: ignore[attr-defined]
        # Bound methods of this QObject: the signals arrive queued on the GUI thread.
        job.signals.finished.connect(self._preview_done)
        job.signals.failed.connect(self._preview_failed)
        self._rendering = job
        start_job(job, self.pool)

    def _finish_render(self) -> int:
        """Forget the finished render job; return the options generation it drew."""
        job, self._rendering = self._rendering, None
        self._retired = job  # kept until the next one: the pool thread may still be leaving run()
        self._shown_dpi = getattr(job, "dpi", self._preview_dpi())
        return getattr(job, "generation", -1)

    def _preview_done(self, png: bytes) -> None:
        generation = self._finish_render()
        if generation != self._generation:
            self._render_preview()
            return
        self.preview_png = png
        image = QImage.fromData(png, "PNG")
        self._pixmap = QPixmap.fromImage(image)
        self._show_pixmap()
        self.status.setText(self._describe_output(image.width(), image.height()))
        self.preview_ready.emit()

    def _describe_output(self, w: int, h: int) -> str:
        """What Save will write: the figure's size in inches (and pixels for PNG)."""
        dpi = getattr(self, "_shown_dpi", None) or self._preview_dpi()
        w_in, h_in = w / dpi, h / dpi
        text = f"{w_in:.2f} × {h_in:.2f} in"
        if self.file_format == "png":
            d = self.dpi_spin.value()
            text += f", {round(w_in * d)} × {round(h_in * d)} px at {d} dpi"
        else:
            text += f", {FORMAT_NAMES[self.file_format]} with embedded fonts"
        return text

    def _preview_failed(self, message: str) -> None:
        generation = self._finish_render()
        if generation != self._generation:
            self._render_preview()
            return
        self.preview_png = b""
        self._pixmap = None
        self.preview.setPixmap(QPixmap())
        self.preview.setText("no preview")
        self.status.setText(message.splitlines()[0] if message else "rendering failed")
        self.failed.emit(message)

    def _refresh_description(self, *_: Any) -> None:
        pix = getattr(self, "_pixmap", None)
        if pix is not None and not pix.isNull() and self._rendering is None:
            self.status.setText(self._describe_output(pix.width(), pix.height()))

    def _show_pixmap(self) -> None:
        pix = getattr(self, "_pixmap", None)
        if pix is None or pix.isNull():
            return
        avail = max(50, self.scroll.viewport().width() - 8)
        if pix.width() > avail:
            pix = pix.scaledToWidth(avail, Qt.TransformationMode.SmoothTransformation)
        self.preview.setPixmap(pix)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._show_pixmap()

    # ------------------------------------------------------------------ saving
    def default_path(self) -> Path:
        """Where Save proposes to write: ``figures_dir/KIND-DATASET[-qROW].EXT``."""
        folder = Path(self.workspace.figures_dir) if self.workspace is not None else Path.home()
        name = getattr(self.dataset, "name", "") or "results"
        suffix = ""
        if self.kind != "cmc" and self.queries_box.currentData() == "current" and self.query_row is not None:
            suffix = f"-q{self.query_row}"
        return folder / f"{self.kind}-{name}{suffix}.{self.file_format}"

    def _ask_save(self) -> None:
        filters = ";;".join(f"{FORMAT_NAMES[f]} (*.{f})" for f in ("pdf", "svg", "png"))
        chosen = f"{FORMAT_NAMES[self.file_format]} (*.{self.file_format})"
        path, _ = QFileDialog.getSaveFileName(self, "Export figure", str(self.default_path()), filters, chosen)
        if not path:
            return
        path = Path(path)
        if path.suffix.lower() not in (".pdf", ".svg", ".png"):
            path = path.with_suffix(f".{self.file_format}")
        self.save_to(path)

    def save_to(self, path: str | Path) -> None:
        """Write the figure to ``path`` (format by suffix) in the background; ``saved`` tells when."""
        from reidviewer.figures.export import export_figure

        path = Path(path)
        kind, dataset, results, options = self.kind, self.dataset, list(self.results), self.options()
        self.status.setText(f"saving {path.name}…")
        self.save_button.setEnabled(False)
        job = Job(lambda progress, cancel: export_figure(kind, dataset, results, path, options))
        job.signals.finished.connect(self._saved)
        job.signals.failed.connect(self._save_failed)
        self._saving = job
        start_job(job, self.pool)

    def _saved(self, path: Path) -> None:
        self._retired_save, self._saving = self._saving, None
        self.save_button.setEnabled(True)
        self.last_saved = Path(path)
        self.status.setText(f"Saved {path}")
        self.saved.emit(str(path))

    def _save_failed(self, message: str) -> None:
        self._retired_save, self._saving = self._saving, None
        self.save_button.setEnabled(True)
        self.status.setText(f"Not saved: {message.splitlines()[0] if message else 'error'}")
        self.failed.emit(message)

    # ------------------------------------------------------------------ cmc overlays
    def _ask_add_curve(self) -> None:
        folder = str(self.workspace.results_dir) if self.workspace is not None else ""
        path, _ = QFileDialog.getOpenFileName(self, "Add results file", folder, "Results (*.npz)")
        if path:
            self.add_results(path)

    def add_results(self, results_or_path: Any) -> None:
        """Overlay another results (a ``Results`` or a results file) in the CMC figure."""
        from reidviewer.engine.results import Results
        from reidviewer.errors import ReidViewerError

        try:
            r = Results.load(results_or_path) if isinstance(results_or_path, (str, Path)) else results_or_path
        except ReidViewerError as exc:
            self.status.setText(str(exc))
            return
        self.results.append(r)
        self.schedule_preview()

    def done(self, result: int) -> None:  # noqa: D401 - Qt's name
        """Close, after any render or save in flight has finished (they hold this dialog's data)."""
        self._timer.stop()
        self.pool.waitForDone(10_000)
        super().done(result)


def failures_batch_dialog(parent: QWidget | None, dataset: Any, results: Any, workspace: Any,
                          count: int = 8) -> ExportDialog:
    """The dialog set up to export the ``count`` worst failure cases as one figure (Failures view)."""
    return ExportDialog("failures", dataset, results, None, None, workspace, parent,
                        query_mode="failures", count=count)


def open_export_dialog(parent: QWidget, kind: str, dataset: Any, results: Any, query_row: int | None,
                       gallery_row: int | None, workspace: Any, **kwargs: Any) -> ExportDialog:
    """Create and show (non-modal) an ``ExportDialog``; for the main window's menu and views."""
    dialog = ExportDialog(kind, dataset, results, query_row, gallery_row, workspace, parent, **kwargs)
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog


__all__: Sequence[str] = ("ExportDialog", "failures_batch_dialog", "open_export_dialog")
