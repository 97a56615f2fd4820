"""The Training panel: set up a run, watch it live, stop / resume it, open the result.

Training runs the engine's ``train`` — the same function the CLI calls — in one dedicated
``TrainingWorker`` moved to its own ``QThread``. The engine reports progress at most about
10 times a second; the worker forwards each report as a queued signal, so the GUI thread only
appends a point to the curves. Stop is cooperative: a ``threading.Event`` polled by the
engine between steps; the engine then saves a checkpoint and returns.

Errors (out of memory, a NaN loss, a bad frame, a full disk) arrive as a ``failed`` signal
and are shown in plain words in the panel; the run folder is kept and the app goes on.
"""
from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, Qt, QThread, Signal, Slot
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from reidviewer.app import viewmodel
from reidviewer.app.colors import ITERATION_COLORS, iteration_color
from reidviewer.app.tasks import describe_failure
from reidviewer.data.registry import available_readers
from reidviewer.engine.recipes import RECIPES, TrainConfig, recipe_summary
from reidviewer.errors import ReidViewerError
from reidviewer.model.config import HEAD_TRAITS, POOLINGS
from reidviewer.vocabulary import TERMS

#: Attention pooling P of the RAN head, with what the user reads (the names come from
#: ``reidviewer.model.config.POOLINGS``; these are only their descriptions).
POOLING_TEXT: dict[str, tuple[str, str]] = {
    "mean": ("(1/T)·Σαx", "attention re-weights frames and also scales the feature"),
    "l1": ("Σαx / Σα", "attention only re-weights frames (the fast recipe's default)"),
    "sum": ("Σαx", "the paper's literal eq. 2: feature norms grow with sequence length"),
}
#: Readable names of the temporal heads (the list itself comes from the registry).
HEAD_TEXT = {"ran": "RAN (K refinement iterations)", "mean": "mean pooling", "rnn": "RCN recurrent",
             "softmax": "softmax attention"}


def device_choices() -> list[tuple[str, str]]:
    """``(device, label)`` for ``auto``, every device torch reports (CUDA GPUs by name and
    memory, Apple MPS) and the CPU."""
    import torch

    items = [("auto", "auto (a GPU when present, else the CPU)")]
    for i in range(torch.cuda.device_count()):
        p = torch.cuda.get_device_properties(i)
        items.append((f"cuda:{i}", f"cuda:{i} — {p.name}, {p.total_memory / 2**30:.0f} GiB"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        items.append(("mps", "mps — Apple GPU"))
    items.append(("cpu", "CPU"))
    return items


def read_metrics(path: Path) -> dict[str, tuple[list[float], list[float]]]:
    """Series ``name -> (global steps, values)`` from a run's ``metrics.jsonl``.

    Names: the loss terms (``total``, ``hinge``, ``triplet`` …), ``val_rank1``, ``val_map``,
    ``lr``, ``tracklets_per_s`` (older runs logged Siamese ``pairs_per_s``: two tracklets a pair).
    A torn last line (a run killed mid-write) is skipped.
    """
    series: dict[str, tuple[list[float], list[float]]] = {}

    def add(name: str, x: float, y) -> None:
        if y is None or not isinstance(y, (int, float)) or not math.isfinite(y):
            return
        xs, ys = series.setdefault(name, ([], []))
        xs.append(float(x))
        ys.append(float(y))

    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if not isinstance(rec, dict) or "global_step" not in rec:
                continue
            x = rec["global_step"]
            for key, value in rec.items():
                if key.startswith("loss_"):
                    add(key[len("loss_"):], x, value)
            for key in ("val_rank1", "val_map", "lr", "tracklets_per_s"):
                if key in rec:
                    add(key, x, rec[key])
            if "pairs_per_s" in rec and isinstance(rec["pairs_per_s"], (int, float)):
                add("tracklets_per_s", x, 2 * rec["pairs_per_s"])
    return series


class TrainingWorker(QObject):
    """Runs ``engine.train.train`` once; lives in its own ``QThread``.

    Signals (queued to the GUI thread):
        progress(TrainProgress): a progress report (at most ~10 a second).
        finished(TrainOutcome): the run finished or was stopped (``outcome.stopped``).
        failed(str): the run failed; the message is in plain words.
    """

    progress = Signal(object)
    finished = Signal(object)
    failed = Signal(str)

    def __init__(self, config, workspace, resume: bool = False, dataset=None, threads: int | None = None) -> None:
        super().__init__()
        self.config = config
        self.workspace = workspace
        self.resume = resume
        self.dataset = dataset
        self.threads = threads
        self.stop_event = threading.Event()

    def stop(self) -> None:
        """Ask the run to stop after the current step (it saves a checkpoint)."""
        self.stop_event.set()

    @Slot()
    def run(self) -> None:
        from reidviewer.engine.train import run_dir_for, train

        run_dir = None
        try:
            if self.threads:
                import torch

                torch.set_num_threads(self.threads)
            run_dir = run_dir_for(self.workspace, self.config.run_name)
            outcome = train(self.config, self.workspace, progress=self.progress.emit,
                            should_stop=self.stop_event.is_set, resume=self.resume, dataset=self.dataset)
        except BaseException as exc:  # noqa: BLE001 — report every failure, never kill the app
            self.failed.emit(describe_failure(exc, run_dir if run_dir is not None and run_dir.exists() else None))
            return
        self.finished.emit(outcome)


@dataclass
class _Series:
    """Points of one curve of the current run."""

    xs: list[float] = field(default_factory=list)
    ys: list[float] = field(default_factory=list)


class TrainingPanel(QWidget):
    """Training settings, Start / Stop / Resume / Open in viewer, live curves and run comparison.

    Args:
        workspace: where runs (``runs/<name>``) and caches live.

    Signals:
        open_requested(OpenRequest): "Open in viewer" — the main window opens it.
        state_changed(str): ``running``, ``stopping``, ``stopped``, ``finished`` or ``failed``.
        run_finished(object): the ``TrainOutcome`` of a finished or stopped run.
        run_failed(str): the plain-words message of a failed run.
    """

    open_requested = Signal(object)
    state_changed = Signal(str)
    run_finished = Signal(object)
    run_failed = Signal(str)

    def __init__(self, workspace, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.thread: QThread | None = None
        self.worker: TrainingWorker | None = None
        self.state = "idle"
        self.run_dir: Path | None = None
        self.outcome = None
        self.config = None
        self.viewer_dataset = None     # the dataset object the viewer has open (annotations applied)
        self.viewer_request: viewmodel.OpenRequest | None = None
        self.threads: int | None = None  # torch threads in the worker (None: torch's default)
        self._after_stop: list = []
        self._devices_listed = False
        self._stop_asked_at: float | None = None
        self.series: dict[str, _Series] = {}
        self.loss_terms: list[str] = []
        self.comparisons: dict[str, list[pg.PlotDataItem]] = {}
        self.comparison_colors: dict[str, object] = {}
        self._build()
        self._set_controls()

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        # The form's choices come from the registries and its defaults from TrainConfig, so
        # what the panel offers is what the engine and the CLI do.
        label = {k: t.label for k, t in TERMS.items()}
        form = QFormLayout()
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        self.root_edit = QLineEdit()
        self.root_edit.setPlaceholderText("dataset folder (default: what the viewer has open)")
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip("Choose the dataset folder")
        browse.clicked.connect(self._browse_root)
        row = QHBoxLayout()
        row.addWidget(self.root_edit, 1)
        row.addWidget(browse)
        form.addRow(label["root"], row)
        self.name_edit = QComboBox()
        self.name_edit.setEditable(True)
        self.name_edit.addItems(["auto", *available_readers()])
        self.name_edit.setToolTip("How to read the folder (auto: recognise the layout)")
        self.split_spin = QSpinBox()
        self.split_spin.setRange(0, 99)
        row = QHBoxLayout()
        row.addWidget(self.name_edit, 1)
        row.addWidget(QLabel(label["split"]))
        row.addWidget(self.split_spin)
        form.addRow(label["dataset"], row)

        self.recipe_combo = QComboBox()
        for r in RECIPES:
            self.recipe_combo.addItem(r, r)
            self.recipe_combo.setItemData(self.recipe_combo.count() - 1, recipe_summary(r),
                                          Qt.ItemDataRole.ToolTipRole)
        self.recipe_combo.setToolTip("; ".join(f"{r}: {recipe_summary(r)}" for r in RECIPES))
        self.recipe_combo.currentIndexChanged.connect(self._on_recipe)
        form.addRow(label["recipe"], self.recipe_combo)

        self.head_combo = QComboBox()
        for key in HEAD_TRAITS:
            self.head_combo.addItem(HEAD_TEXT.get(key, key), key)
            self.head_combo.setItemData(self.head_combo.count() - 1, HEAD_TRAITS[key].description,
                                        Qt.ItemDataRole.ToolTipRole)
        self.iterations_spin = QSpinBox()
        self.iterations_spin.setRange(0, 64)
        self.iterations_spin.setValue(TrainConfig.iterations)
        self.iterations_spin.setPrefix("K = ")
        self.pooling_combo = QComboBox()
        for i, key in enumerate(POOLINGS):
            text, tip = POOLING_TEXT.get(key, (key, ""))
            self.pooling_combo.addItem(text, key)
            self.pooling_combo.setItemData(i, tip, Qt.ItemDataRole.ToolTipRole)
        self.pooling_combo.setToolTip("How RAN pools the frame features x with its attention α")
        self.head_combo.currentIndexChanged.connect(self._on_head)
        row = QHBoxLayout()
        row.addWidget(self.head_combo, 1)
        row.addWidget(self.iterations_spin)
        form.addRow(label["head"], row)
        form.addRow(label["pooling"], self.pooling_combo)

        self.epochs_spin = QSpinBox()
        self.epochs_spin.setRange(1, 100000)
        self.minutes_spin = QDoubleSpinBox()
        self.minutes_spin.setRange(0, 100000)
        self.minutes_spin.setDecimals(1)
        self.minutes_spin.setSpecialValueText("none")
        self.minutes_spin.setSuffix(" min")
        self.minutes_spin.setToolTip("Stop with a checkpoint after this many minutes (the fast recipe's learning "
                                     "rate schedule fits the budget); none: train all the epochs")
        row = QHBoxLayout()
        row.addWidget(self.epochs_spin, 1)
        row.addWidget(QLabel("time budget"))
        row.addWidget(self.minutes_spin, 1)
        form.addRow(label["epochs"], row)
        self.eval_spin = QSpinBox()
        self.eval_spin.setRange(0, 100000)
        self.eval_spin.setSpecialValueText("never")
        self.eval_spin.setSuffix(" epochs")
        self.eval_spin.setToolTip("Validation rank-1 and mAP every N epochs and at the end (never: no validation)")
        form.addRow(label["eval_every"], self.eval_spin)

        self.lr_spin = QDoubleSpinBox()
        self.lr_spin.setDecimals(6)
        self.lr_spin.setRange(1e-6, 10.0)
        self.lr_spin.setSingleStep(1e-4)
        self.milestones_edit = QLineEdit()
        self.milestones_edit.setToolTip("paper recipe: epochs at which the learning rate is divided by 10")
        self.milestones_label = QLabel("milestones")
        row = QHBoxLayout()
        row.addWidget(self.lr_spin, 1)
        row.addWidget(self.milestones_label)
        row.addWidget(self.milestones_edit, 1)
        form.addRow(label["lr"], row)

        # Batches: Siamese pairs (paper) or P identities × K tracklets (fast).
        self.pairs_spin = QSpinBox()
        self.pairs_spin.setRange(1, 4096)
        self.pairs_spin.setSuffix(" pairs")
        self.pairs_spin.setToolTip("paper recipe: Siamese pairs per optimiser step")
        self.ids_spin = QSpinBox()
        self.ids_spin.setRange(2, 4096)
        self.ids_spin.setPrefix("P = ")
        self.ids_spin.setToolTip("fast recipe: identities per batch")
        self.per_id_spin = QSpinBox()
        self.per_id_spin.setRange(2, 64)
        self.per_id_spin.setPrefix("K = ")
        self.per_id_spin.setToolTip("fast recipe: tracklets per identity")
        row = QHBoxLayout()
        row.addWidget(self.pairs_spin, 1)
        row.addWidget(self.ids_spin, 1)
        row.addWidget(self.per_id_spin, 1)
        form.addRow("Batch", row)

        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.seed_spin.setValue(TrainConfig.seed)
        self.flow_check = QCheckBox("optical flow")
        self.flow_check.setChecked(TrainConfig.use_flow)
        row = QHBoxLayout()
        row.addWidget(self.seed_spin, 1)
        row.addWidget(self.flow_check)
        form.addRow(label["seed"], row)
        self.run_edit = QLineEdit()
        self.run_edit.setPlaceholderText("run name (default: head and time)")
        form.addRow("Run", self.run_edit)

        self.device_combo = QComboBox()
        self.device_combo.addItem("auto (a GPU when present, else the CPU)", "auto")
        form.addRow(label["device"], self.device_combo)

        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.resume_button = QPushButton("Resume")
        self.open_button = QPushButton("Open in viewer")
        self.compare_button = QPushButton("Compare runs…")
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.resume_button.clicked.connect(self.resume)
        self.open_button.clicked.connect(self.open_in_viewer)
        self.compare_button.clicked.connect(self._ask_compare)
        self.start_button.setToolTip("Start a new run with these settings")
        self.stop_button.setToolTip("Stop after the current step and save a checkpoint")
        self.resume_button.setToolTip("Continue the run named above from its last checkpoint")
        self.open_button.setToolTip("Load the run's checkpoint in the viewer and recompute the results")
        buttons = QHBoxLayout()
        for b in (self.start_button, self.stop_button, self.resume_button, self.open_button):
            buttons.addWidget(b)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.status = QLabel("Ready.")
        self.status.setWordWrap(True)
        self.health = QLabel("")
        self.health.setWordWrap(True)
        self.health.setStyleSheet("color: #7a3b00; background: #fff4e0; padding: 4px; border-radius: 3px;")
        self.health.setVisible(False)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.error.setStyleSheet("color: #b00020; background: #fdecea; padding: 4px; border-radius: 3px;")
        self.error.setVisible(False)

        settings = QWidget()
        settings.setLayout(form)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(settings)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        # The buttons, progress and messages stay in view however small the form area is.
        left = QWidget()
        col = QVBoxLayout(left)
        col.setContentsMargins(4, 4, 4, 4)
        col.addWidget(scroll, 1)
        col.addLayout(buttons)
        row = QHBoxLayout()
        row.addWidget(self.progress, 1)
        row.addWidget(self.compare_button)
        col.addLayout(row)
        col.addWidget(self.status)
        col.addWidget(self.health)
        col.addWidget(self.error)

        pg.setConfigOptions(antialias=True)
        self.plot_widgets: list[pg.PlotWidget] = []
        self.loss_plot = self._plot("loss")
        self.rank1_plot = self._plot("validation R1 and mAP")
        self.rank1_plot.setYRange(0, 1, padding=0.02)
        self.lr_plot = self._plot("learning rate")
        self.rate_plot = self._plot("tracklets/s")
        for p in (self.rank1_plot, self.lr_plot, self.rate_plot):
            p.setXLink(self.loss_plot)
        for p in (self.loss_plot, self.rank1_plot, self.lr_plot, self.rate_plot):
            p.setLabel("bottom", "step")
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.curves["val_rank1"] = self.rank1_plot.plot([], [], name="R1", pen=pg.mkPen(iteration_color(0), width=2),
                                                        symbol="o", symbolSize=5, symbolBrush=iteration_color(0))
        self.curves["val_map"] = self.rank1_plot.plot([], [], name="mAP", pen=pg.mkPen(iteration_color(1), width=2,
                                                                                       style=Qt.PenStyle.DashLine),
                                                      symbol="s", symbolSize=5, symbolBrush=iteration_color(1))
        self.curves["lr"] = self.lr_plot.plot([], [], pen=pg.mkPen(iteration_color(2), width=1.5), stepMode=None)
        self.curves["tracklets_per_s"] = self.rate_plot.plot([], [], pen=pg.mkPen(iteration_color(5), width=1.2))
        self.eta_label = QLabel("")
        self.eta_label.setWordWrap(True)
        # The legend sits above the plots, not on them: a legend inside would hide the curves.
        self.legend = QLabel("")
        self.legend.setWordWrap(True)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        plots_box = QWidget()
        pcol = QVBoxLayout(plots_box)
        pcol.setContentsMargins(0, 0, 0, 0)
        pcol.setSpacing(0)
        # The loss and validation curves matter most: they get most of the height.
        pcol.addWidget(self.legend)
        pcol.addWidget(self.plot_widgets[0], 3)
        pcol.addWidget(self.plot_widgets[1], 2)
        small = QHBoxLayout()
        small.addWidget(self.plot_widgets[2])
        small.addWidget(self.plot_widgets[3])
        pcol.addLayout(small, 2)
        pcol.addWidget(self.eta_label)

        # Side by side: the settings on the left, the live curves on the right (the Training
        # page has the whole centre of the window).
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(plots_box)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 3)
        split.setSizes([470, 780])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)
        self.form_widgets = [self.root_edit, browse, self.name_edit, self.split_spin, self.recipe_combo,
                             self.head_combo, self.iterations_spin, self.pooling_combo, self.epochs_spin,
                             self.minutes_spin, self.eval_spin, self.lr_spin, self.milestones_edit, self.pairs_spin,
                             self.ids_spin, self.per_id_spin, self.seed_spin, self.flow_check, self.run_edit,
                             self.device_combo]
        self.recipe_combo.setCurrentIndex(0)
        self._on_recipe()
        self._update_legend()

    def _plot(self, title: str) -> pg.PlotItem:
        widget = pg.PlotWidget(background="w")
        widget.setMinimumHeight(70)
        self.plot_widgets.append(widget)  # the widget owns the plot item: keep it alive
        p = widget.getPlotItem()
        p.setTitle(title, size="9pt", color="k")
        p.showGrid(x=True, y=True, alpha=0.25)
        p.setMenuEnabled(False)
        p.hideButtons()
        return p

    def showEvent(self, event) -> None:  # noqa: N802
        # Listing devices imports torch (a second or two): done when the panel is first seen.
        self.list_devices()
        super().showEvent(event)

    def list_devices(self) -> None:
        """Fill the device box with ``auto`` and every device torch reports (once)."""
        if self._devices_listed:
            return
        self._devices_listed = True
        current = self.device_combo.currentData()
        self.device_combo.clear()
        for key, text in device_choices():
            self.device_combo.addItem(text, key)
        self.set_device(current or "auto")

    def set_device(self, device: str) -> None:
        """Pick ``device`` (``auto``, ``cpu``, ``cuda:0`` …) in the device box."""
        i = self.device_combo.findData(device)
        if i < 0:
            self.device_combo.addItem(device, device)
            i = self.device_combo.count() - 1
        self.device_combo.setCurrentIndex(i)

    def _on_head(self) -> None:
        idle = self.state not in ("running", "stopping")
        traits = HEAD_TRAITS.get(self.head_combo.currentData())
        self.iterations_spin.setEnabled(idle and bool(traits and traits.refines))
        self.pooling_combo.setEnabled(idle and bool(traits and traits.attention) and
                                      self.head_combo.currentData() != "softmax")

    def _on_recipe(self) -> None:
        """Fill the recipe's defaults (``TrainConfig(recipe=...)``) and show its own settings."""
        recipe = self.recipe_combo.currentData() or RECIPES[0]
        d = TrainConfig(recipe=recipe)
        self.epochs_spin.setValue(d.epochs)
        self.eval_spin.setValue(d.eval_every)
        self.lr_spin.setValue(d.lr)
        self.milestones_edit.setText(", ".join(map(str, d.milestones)))
        self.pairs_spin.setValue(d.pairs_per_step)
        self.ids_spin.setValue(d.ids_per_batch)
        self.per_id_spin.setValue(d.tracklets_per_id)
        pooling = d.model.get("pooling", "mean")
        self.pooling_combo.setCurrentIndex(max(0, self.pooling_combo.findData(pooling)))
        paper = d.uses_pairs
        for w in (self.milestones_label, self.milestones_edit, self.pairs_spin):
            w.setVisible(paper)
        for w in (self.ids_spin, self.per_id_spin):
            w.setVisible(not paper)
        self.recipe_combo.setToolTip(recipe_summary(recipe))

    def _browse_root(self) -> None:
        root = QFileDialog.getExistingDirectory(self, "Dataset folder to train on", self.root_edit.text())
        if root:
            self.root_edit.setText(root)

    # ------------------------------------------------------------------ viewer link
    def set_viewer_dataset(self, request: viewmodel.OpenRequest, dataset=None) -> None:
        """Default the dataset fields to what the viewer has open (unless a run is going)."""
        self.viewer_request = request
        self.viewer_dataset = dataset
        if self.is_running() or request.root is None:
            return
        self.root_edit.setText(str(request.root))
        name = dataset.name if dataset is not None and request.name == "auto" else request.name
        self.name_edit.setCurrentText(name)
        self.split_spin.setValue(request.split)

    # ------------------------------------------------------------------ config
    def config_from_form(self) -> TrainConfig:
        """The ``TrainConfig`` the form describes; raises ValueError on a bad field."""
        root = self.root_edit.text().strip()
        if not root:
            raise ValueError("Choose a dataset folder to train on (or open one in the viewer).")
        if not Path(root).expanduser().is_dir():
            raise ValueError(f"{root}: no such dataset folder.")
        recipe = self.recipe_combo.currentData()
        head = self.head_combo.currentData()
        traits = HEAD_TRAITS[head]
        name = self.run_edit.text().strip() or time.strftime(f"{head}-%Y%m%d-%H%M%S")
        if "/" in name or "\\" in name or name.startswith("."):
            raise ValueError(f"A run name is a plain folder name, got {name!r}.")
        protocol = None
        if self.viewer_request is not None and self.viewer_request.root is not None \
                and Path(root) == Path(self.viewer_request.root):
            protocol = self.viewer_request.protocol
        settings = dict(
            recipe=recipe, root=str(Path(root).expanduser()), dataset=self.name_edit.currentText().strip() or "auto",
            protocol=protocol, split=self.split_spin.value(), head=head,
            iterations=self.iterations_spin.value() if traits.refines else 0,
            epochs=self.epochs_spin.value(), minutes=float(self.minutes_spin.value()), lr=self.lr_spin.value(),
            seed=self.seed_spin.value(), device=self.device_combo.currentData() or "auto",
            eval_every=self.eval_spin.value(), use_flow=self.flow_check.isChecked(), run_name=name,
            model={"pooling": self.pooling_combo.currentData()} if traits.attention and head != "softmax" else None,
        )
        if recipe == "paper":
            text = self.milestones_edit.text().replace(";", ",")
            try:
                settings["milestones"] = tuple(int(m) for m in text.split(",") if m.strip())
            except ValueError:
                raise ValueError(f"Milestones must be epoch numbers separated by commas, got {text!r}.") from None
            settings["pairs_per_step"] = self.pairs_spin.value()
        else:
            settings["ids_per_batch"] = self.ids_spin.value()
            settings["tracklets_per_id"] = self.per_id_spin.value()
        return TrainConfig(**settings)

    def _unique_name(self, name: str) -> str:
        """``name``, or ``name-2``, ``name-3`` … so Start never overwrites a kept run."""
        base, n, out = name, 1, name
        while (self.workspace.runs_dir / out).exists():
            n += 1
            out = f"{base}-{n}"
        return out

    def _dataset_for(self, config):
        """The viewer's dataset object when training on what it shows (annotations applied)."""
        r = self.viewer_request
        if self.viewer_dataset is not None and r is not None and r.root is not None \
                and Path(config.root) == Path(r.root) and config.dataset in ("auto", self.viewer_dataset.name):
            return self.viewer_dataset
        return None

    # ------------------------------------------------------------------ actions
    def is_running(self) -> bool:
        """True while a run's thread is alive (running or stopping)."""
        # isRunning: after wait() the thread is over before its finished slot clears it.
        return self.thread is not None and (self.thread.isRunning() or not self.thread.isFinished())

    def start(self) -> None:
        """Start a new run with the form's settings."""
        if self.is_running():
            return
        try:
            config = self.config_from_form()
        except ValueError as exc:
            self._show_error(str(exc))
            return
        config.run_name = self._unique_name(config.run_name)
        self.run_edit.setText(config.run_name)
        self.clear_curves()
        self._launch(config, resume=False)

    def resume(self) -> None:
        """Continue the run named in the form from its last saved state."""
        if self.is_running():
            return
        from reidviewer.engine.train import TrainConfig, resumed_config

        name = self.run_edit.text().strip()
        run_dir = self.workspace.runs_dir / name if name else None
        if run_dir is None or not (run_dir / "state.json").is_file():
            self._show_error(f"Nothing to resume: no saved run named {name!r} in {self.workspace.runs_dir}.")
            return
        try:
            # The run's own settings, as the CLI resumes; only the device may move.
            config = resumed_config(run_dir, TrainConfig(epochs=0, device=self.device_combo.currentData() or "auto"))
        except ReidViewerError as exc:
            self._show_error(f"{exc}.")
            return
        self.clear_curves()
        self._load_history(run_dir)
        self._launch(config, resume=True)

    def _launch(self, config, resume: bool) -> None:
        from reidviewer.engine.train import run_dir_for

        self.config = config
        self.outcome = None
        self.run_dir = run_dir_for(self.workspace, config.run_name)
        self.error.setVisible(False)
        self.worker = TrainingWorker(config, self.workspace, resume=resume, dataset=self._dataset_for(config),
                                     threads=self.threads)
        self.thread = QThread(self)
        self.thread.setObjectName(f"training {config.run_name}")
        self.worker.moveToThread(self.thread)
        self.thread.started.connect(self.worker.run)
        self.worker.progress.connect(self._on_progress)
        self.worker.finished.connect(self._on_finished)
        self.worker.failed.connect(self._on_failed)
        self.thread.finished.connect(self._on_thread_done)
        self.status.setText(f"{'Resuming' if resume else 'Starting'} {config.run_name}: preparing the data…")
        self.progress.setRange(0, 0)
        self._set_state("running")
        self.thread.start()

    def stop(self) -> None:
        """Ask the run to stop after the current step; it saves a checkpoint."""
        if self.worker is None or self.state != "running":
            return
        self._stop_asked_at = time.monotonic()
        self.worker.stop()
        self.status.setText("Stopping after this step (saving a checkpoint)…")
        self._set_state("stopping")

    def stop_then(self, callback) -> None:
        """Stop the run and call ``callback()`` once its thread is over (at once if none)."""
        if not self.is_running():
            callback()
            return
        self._after_stop.append(callback)
        self.stop()

    def wait(self, ms: int = 30000) -> bool:
        """Block until the run's thread is over (for shutdown); True if it is.

        Events are processed meanwhile: the thread quits only once the GUI thread has handled
        the worker's last signal, so a plain ``QThread.wait`` here would wait for ever.
        """
        deadline = time.monotonic() + ms / 1000
        while self.thread is not None and time.monotonic() < deadline:
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            if self.thread is not None:
                self.thread.wait(20)
        return self.thread is None

    def open_in_viewer(self) -> None:
        """Ask the viewer to load the run's checkpoint (it recomputes the results)."""
        if self.run_dir is None or self.config is None:
            return
        ckpt = self.run_dir / "last.safetensors"
        if not ckpt.is_file():
            self._show_error(f"{ckpt}: the run has no checkpoint yet.")
            return
        c = self.config
        request = viewmodel.OpenRequest(root=Path(c.root), name=c.dataset, protocol=c.protocol, checkpoint=ckpt,
                                        split=c.split)
        self.status.setText(f"Opening {c.run_name} in the viewer…")
        self.open_requested.emit(request)

    def confirm_close(self, parent: QWidget, close_again) -> bool:
        """Called when the window closes: True to close now.

        During a run, asks whether to stop it (saving a checkpoint, then ``close_again()`` is
        called) or to keep waiting (the window stays open).
        """
        if not self.is_running():
            return True
        box = QMessageBox(QMessageBox.Icon.Question, "Training is running",
                          f"The run {self.config.run_name if self.config else ''} is still training.\n"
                          "Stop it (a checkpoint is saved) and close, or keep waiting?", parent=parent)
        stop = box.addButton("Stop and close", QMessageBox.ButtonRole.AcceptRole)
        box.addButton("Keep waiting", QMessageBox.ButtonRole.RejectRole)
        box.setDefaultButton(stop)
        box.setObjectName("training_close_question")
        box.exec()
        if box.clickedButton() is stop:
            self.stop_then(close_again)
        return False

    # ------------------------------------------------------------------ worker signals
    def _on_progress(self, p) -> None:
        self.progress.setRange(0, 1000)
        self.progress.setValue(int(1000 * min(max(p.fraction, 0.0), 1.0)))
        x = float(p.global_step)
        if p.losses:
            for term, value in p.losses.items():
                self._append(term, x, value)
            self._append("lr", x, p.lr)
            self._append("tracklets_per_s", x, p.tracklets_per_s)
        if p.message.startswith("validation") and p.val_rank1 is not None:
            self._append("val_rank1", x, p.val_rank1)
            self._append("val_map", x, p.val_map)
        losses = "  ".join(f"{k} {v:.3f}" for k, v in p.losses.items())
        if self.state == "running":
            self.status.setText(f"{self.config.run_name}: epoch {min(p.epoch + 1, max(p.epochs, 1))}/{p.epochs}, "
                                f"step {p.step}/{p.steps_per_epoch}" + (f" — {p.message}" if p.message else ""))
        self.health.setText("⚠ " + "\n⚠ ".join(p.health) if p.health else "")
        self.health.setVisible(bool(p.health))
        val = (f"   validation R1 {100 * p.val_rank1:.1f}%, mAP {100 * p.val_map:.1f}%"
               if p.val_rank1 is not None and p.val_map is not None else "")
        eta = f"ETA {_duration(p.eta_s)}" if math.isfinite(p.eta_s) else "ETA –"
        self.eta_label.setText(f"{eta}   {p.tracklets_per_s:.0f} tracklets/s   lr {p.lr:.3g}{val}\n{losses}")

    def _on_finished(self, outcome) -> None:
        self.outcome = outcome
        self.run_dir = outcome.run_dir
        self.progress.setRange(0, 1)
        self.progress.setValue(0 if outcome.stopped else 1)
        val = f", validation R1 {100 * outcome.val_rank1:.1f}%" if outcome.val_rank1 is not None else ""
        took = f" in {time.monotonic() - self._stop_asked_at:.1f} s" if outcome.stopped and self._stop_asked_at else ""
        how = {"finished": "finished", "budget": "reached its time budget", "collapsed":
               "stopped: the embedding collapsed (the checkpoint holds the weights from before)"}.get(
            outcome.reason, "stopped" + took)
        self.status.setText(f"{outcome.run_dir.name} {how} after "
                            f"{outcome.epochs_done} epochs ({outcome.global_step} steps){val}. "
                            f"Checkpoint: {outcome.checkpoint}")
        self._final_state = "stopped" if outcome.stopped else "finished"
        self.thread.quit()

    def _on_failed(self, message: str) -> None:
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self._show_error(message)
        self.status.setText("The run failed; the app goes on.")
        self._final_state = "failed"
        self._failed_message = message
        self.thread.quit()

    def _on_thread_done(self) -> None:
        state = getattr(self, "_final_state", "failed")
        self.thread.deleteLater()
        self.worker.deleteLater()
        self.thread = None
        self.worker = None
        self._stop_asked_at = None
        self._set_state(state)
        if state == "failed":
            self.run_failed.emit(getattr(self, "_failed_message", ""))
        else:
            self.run_finished.emit(self.outcome)
        callbacks, self._after_stop = self._after_stop, []
        for cb in callbacks:
            cb()

    # ------------------------------------------------------------------ state
    def _set_state(self, state: str) -> None:
        self.state = state
        if state == "running":
            self._final_state = "failed"
        self._set_controls()
        self.state_changed.emit(state)

    def _set_controls(self) -> None:
        busy = self.state in ("running", "stopping")
        for w in self.form_widgets:
            w.setEnabled(not busy)
        self._on_head()
        self.start_button.setEnabled(not busy)
        self.stop_button.setEnabled(self.state == "running")
        has_state = self.run_dir is not None and (self.run_dir / "state.json").is_file()
        self.resume_button.setEnabled(not busy and (has_state or self.state == "idle"))
        has_ckpt = self.run_dir is not None and (self.run_dir / "last.safetensors").is_file()
        self.open_button.setEnabled(not busy and has_ckpt)

    def _show_error(self, message: str) -> None:
        self.error.setText(message)
        self.error.setVisible(True)

    # ------------------------------------------------------------------ curves
    def _append(self, name: str, x: float, y: float | None) -> None:
        if y is None or not math.isfinite(y):
            return
        s = self.series.setdefault(name, _Series())
        s.xs.append(x)
        s.ys.append(float(y))
        curve = self._curve(name)
        if curve is not None:
            curve.setData(np.asarray(s.xs), np.asarray(s.ys))

    def _curve(self, name: str) -> pg.PlotDataItem | None:
        """The curve of a series; a loss term gets its own curve when it first appears (the
        recipes log different terms)."""
        curve = self.curves.get(name)
        if curve is None and name not in ("val_rank1", "val_map", "lr", "tracklets_per_s"):
            k = len(self.loss_terms)
            self.loss_terms.append(name)
            curve = self.loss_plot.plot([], [], name=name,
                                        pen=pg.mkPen(iteration_color(k), width=2 if name == "total" else 1.2))
            self.curves[name] = curve
            self._update_legend()
        return curve

    def clear_curves(self) -> None:
        """Empty the current run's curves (comparisons stay)."""
        self.series.clear()
        for c in self.curves.values():
            c.setData([], [])
        self.eta_label.setText("")

    def _load_history(self, run_dir: Path) -> None:
        log = run_dir / "metrics.jsonl"
        if not log.is_file():
            return
        for name, (xs, ys) in read_metrics(log).items():
            for x, y in zip(xs, ys):
                s = self.series.setdefault(name, _Series())
                s.xs.append(x)
                s.ys.append(y)
        for name, s in self.series.items():
            curve = self._curve(name)
            if curve is not None:
                curve.setData(np.asarray(s.xs), np.asarray(s.ys))

    def _ask_compare(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Runs to compare (their metrics.jsonl)",
                                                str(self.workspace.runs_dir), "Metrics logs (metrics.jsonl)")
        for p in paths:
            self.add_comparison(Path(p))

    def add_comparison(self, path: Path) -> str:
        """Overlay a finished run's total loss and validation rank-1 (dashed) on the curves.

        Args:
            path: a run folder or its ``metrics.jsonl``.

        Returns:
            The run's name as shown in the legends.

        Raises:
            ValueError: the file is missing or holds no metrics.
        """
        log = path / "metrics.jsonl" if path.is_dir() else path
        if not log.is_file():
            raise ValueError(f"{log}: no metrics log here")
        series = read_metrics(log)
        if not series:
            raise ValueError(f"{log}: the metrics log holds no records")
        name = log.parent.name
        self.remove_comparison(name)
        color = ITERATION_COLORS[(len(self.comparisons) + 3) % len(ITERATION_COLORS)]
        pen = pg.mkPen(color, width=1.5, style=Qt.PenStyle.DashLine)
        items = []
        if "total" in series:
            items.append(self.loss_plot.plot(*series["total"], name=f"{name} (total)", pen=pen))
        if "val_rank1" in series:
            items.append(self.rank1_plot.plot(*series["val_rank1"], name=name, pen=pen, symbol="t", symbolSize=6,
                                              symbolBrush=color))
        self.comparisons[name] = items
        self.comparison_colors[name] = color
        self._update_legend()
        return name

    def remove_comparison(self, name: str) -> None:
        """Remove a compared run's curves."""
        self.comparison_colors.pop(name, None)
        for item in self.comparisons.pop(name, []):
            for plot in (self.loss_plot, self.rank1_plot):
                if item in plot.listDataItems():
                    plot.removeItem(item)
        self._update_legend()

    def _update_legend(self) -> None:
        def chip(color, text: str, dash: bool = False) -> str:
            return f'<span style="color:{color.name()}">{"╌╌" if dash else "━━"}</span>&nbsp;{text}'

        parts = [chip(iteration_color(k), term) for k, term in enumerate(self.loss_terms)]
        parts.append(chip(iteration_color(0), "R1"))
        parts.append(chip(iteration_color(1), "mAP", dash=True))
        parts += [chip(c, f"{n} (total loss, rank-1)", dash=True) for n, c in self.comparison_colors.items()]
        self.legend.setText("&nbsp;&nbsp; ".join(parts))


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"
