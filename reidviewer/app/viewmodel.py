"""What the views show, computed from a dataset and its results file. No Qt here.

``load_session`` runs in a worker: it opens the dataset, generates the SynthWalk demo on
first launch, and loads or computes the results file (cached in the workspace). The
``Session`` then answers the views' questions — query rows, ranked tiles, failure cases,
metrics — always from that one results file. The plain records the views display
(``QueryRow``, ``TileData``, ``FailureCase``) live here too, so view logic is tested without
a window.

Numbers shown to people count frames from 1 (``frame 1`` is the first frame), everywhere.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reidviewer.data.dataset import VideoDataset
from reidviewer.data.tracklet import UNKNOWN_CAMERA, Tracklet

Progress = Callable[[int, int, str], None]

#: Below this standard deviation over frames the final attention is "nearly uniform": it
#: weights every frame alike, so it cannot single out an occluded frame. The same measure
#: ("attention spread") is logged during training.
UNIFORM_SPREAD = 0.02


@dataclass(frozen=True)
class OpenRequest:
    """What the user asked to open. ``root=None`` means the SynthWalk demo."""

    root: Path | None = None
    name: str = "auto"
    protocol: str | None = None
    checkpoint: Path | None = None
    split: int = 0

    def describe(self) -> str:
        where = "the SynthWalk demo" if self.root is None else str(self.root)
        ck = f", {model_name(self.checkpoint)}" if self.checkpoint else ""
        return f"{where} (split {self.split}{ck})"

    def to_text(self) -> str:
        return json.dumps(
            {
                "root": str(self.root) if self.root else None,
                "name": self.name,
                "protocol": self.protocol,
                "checkpoint": str(self.checkpoint) if self.checkpoint else None,
                "split": self.split,
            },
            sort_keys=True,
        )

    @classmethod
    def from_text(cls, text: str) -> OpenRequest | None:
        try:
            d = json.loads(text)
            if not isinstance(d, dict):
                return None
            return cls(
                root=Path(d["root"]) if d.get("root") else None,
                name=d.get("name", "auto"),
                protocol=d.get("protocol"),
                checkpoint=Path(d["checkpoint"]) if d.get("checkpoint") else None,
                split=int(d.get("split", 0)),
            )
        except (ValueError, KeyError, TypeError):
            return None


@dataclass(frozen=True)
class QueryRow:
    """One query as the list shows it."""

    row: int           # query row in the results
    pid: int
    person: str
    camera: str
    frames: int
    ap: float          # NaN when the query was skipped (no match in the gallery)
    first_rank: int    # 1-based rank of the first true match; 0 when none
    flagged: bool = False
    # Compare mode: model B's AP and first-true-match rank (``first_rank_b`` -1: no comparison),
    # and whether B fixed (+1) or broke (-1) the query at rank 1.
    ap_b: float = float("nan")
    first_rank_b: int = -1
    change: int = 0

    @property
    def delta_ap(self) -> float:
        """AP(B) − AP(A); NaN without a comparison or for a skipped query."""
        return self.ap_b - self.ap if self.first_rank_b >= 0 else float("nan")


@dataclass(frozen=True)
class TileData:
    """What one retrieval tile shows."""

    gallery_row: int
    rank: int
    distance: float
    is_match: bool
    thumb: str
    label: str = ""
    flagged: bool = False


@dataclass(frozen=True)
class FailureCase:
    """One failed query: the probe, its wrong top-1 and its first true match."""

    query_row: int
    probe_label: str
    probe_thumb: str
    wrong_row: int
    wrong_label: str
    wrong_thumb: str
    wrong_distance: float
    true_row: int | None
    true_label: str
    true_thumb: str | None
    true_rank: int
    true_distance: float
    ap: float


def person_label(t: Tracklet) -> str:
    """``person006`` stays as it is; a bare id such as ``0042`` becomes ``person 0042``."""
    return t.person if t.person.lower().startswith("person") else f"person {t.person}"


def camera_label(t: Tracklet) -> str:
    """The camera's name, or ``unknown camera``."""
    return "unknown camera" if t.camid == UNKNOWN_CAMERA else t.camera


def thumb_path(tracklet: Tracklet) -> str:
    """The frame that stands for a tracklet in thumbnails (the middle one)."""
    return str(tracklet.frame_path(len(tracklet) // 2))


def model_name(checkpoint: Path | str | None) -> str:
    """How a checkpoint is named to people: its run (``runs/NAME/last.safetensors`` → ``run
    NAME``), or its file name without the suffix."""
    if checkpoint is None:
        return "no model"
    text = str(checkpoint)
    if text.startswith("model:"):  # a plugin (model:NAME[:ARG]) or an import (model:imported:NAME)
        ref = text[len("model:"):]
        return ref[len("imported:"):] if ref.startswith("imported:") else ref
    p = Path(checkpoint)
    if p.stem in ("last", "state") or p.stem.startswith("epoch_") or p.stem.startswith("minute_"):
        return f"run {p.parent.name}" + ("" if p.stem == "last" else f" ({p.stem})")
    return p.stem


def describe_model(settings: dict) -> str:
    """The model a results file was computed with, in words (``RAN, K = 3``)."""
    from reidviewer.model.config import HEAD_TRAITS

    model = settings.get("model") if isinstance(settings, dict) else None
    if not isinstance(model, dict):
        return "model"
    head = model.get("head", "?")
    names = {"ran": "RAN", "mean": "mean pooling", "rnn": "RCN (recurrent)", "softmax": "softmax attention"}
    text = names.get(head, head)
    traits = HEAD_TRAITS.get(head)
    if traits is not None and traits.refines:
        text += f", K = {model.get('iterations', '?')}"
    return text


def attention_spread(attention: np.ndarray | None) -> float:
    """Standard deviation of the final iteration's attention over a tracklet's frames."""
    a = np.asarray(attention) if attention is not None else np.zeros((0, 0))
    if a.ndim != 2 or a.shape[1] < 2:
        return 0.0
    return float(a[-1].std())


def coinciding_iterations(attention: np.ndarray | None, tol: float = 1e-3) -> list[list[int]]:
    """Groups of refinement iterations whose curves lie on top of each other (within ``tol``).

    With eq. 3's shared θ′, iterations 1..K often rank frames alike and their curves coincide,
    so a plot shows fewer curves than iterations; the plot says which ones.
    """
    a = np.asarray(attention) if attention is not None else np.zeros((0, 0))
    groups: list[list[int]] = []
    for k in range(a.shape[0] if a.ndim == 2 else 0):
        for g in groups:
            if np.max(np.abs(a[g[0]] - a[k])) <= tol:
                g.append(k)
                break
        else:
            groups.append([k])
    return [g for g in groups if len(g) > 1]


@dataclass
class Session:
    """A dataset, one of its splits, a checkpoint and the results computed from them."""

    request: OpenRequest
    dataset: VideoDataset
    results: object  # reidviewer.engine.results.Results
    checkpoint: Path
    frame_flag_map: dict[int, dict[int, str]] = field(default_factory=dict)
    audit: object | None = None
    _failures: list[FailureCase] | None = None
    #: The dataset as its reader opened it, when ``dataset`` is an annotated view (the
    #: annotation store is keyed and attached by the original); ``None``: ``dataset`` itself.
    base_dataset: VideoDataset | None = None
    #: The split's training tracklets with their features (``engine.training_set.TrainingSet``),
    #: once the Map tab has asked for them: they open in the gallery player as the rows after
    #: the gallery's (``num_gallery``, ``num_gallery + 1``, …), unranked.
    training: object | None = None

    def prepare(self) -> Session:
        """Compute the lists the views need up front (call it in the worker, off the GUI thread)."""
        self.failure_cases()
        return self

    # ---------------------------------------------------------------- basics
    @property
    def model(self) -> str:
        """The model in words: its run or file, and its head."""
        return f"{model_name(self.checkpoint)} ({describe_model(self.results.settings)})"

    @property
    def title(self) -> str:
        return f"{self.dataset.name} (protocol {self.dataset.protocol}) · split {self.results.split} · {self.model}"

    @property
    def status(self) -> str:
        m = self.results.metrics()
        return (
            f"{self.dataset.name}: {self.results.num_queries} queries, {self.results.num_gallery} gallery · "
            f"R1 {100 * m['rank1']:.1f}% · mAP {100 * m['mAP']:.1f}% · {self.model}"
        )

    @property
    def num_queries(self) -> int:
        return self.results.num_queries

    @property
    def num_gallery(self) -> int:
        return self.results.num_gallery

    @property
    def has_attention(self) -> bool:
        """Whether the model weights frames (RAN, softmax); mean pooling and RCN do not."""
        from reidviewer.model.config import HEAD_TRAITS

        model = self.results.settings.get("model") if isinstance(self.results.settings, dict) else None
        if isinstance(model, dict) and model.get("head") in HEAD_TRAITS:
            return HEAD_TRAITS[model["head"]].attention
        return self.results.attention_iterations > 1 or self._attention_varies()

    def _attention_varies(self) -> bool:
        r = self.results
        return bool(r.attention_values.size) and float(np.ptp(r.attention_values)) > 1e-6

    @property
    def num_iterations(self) -> int:
        return max(1, self.results.attention_iterations)

    @property
    def num_gallery_rows(self) -> int:
        """Rows the gallery player can show: the gallery's, then the training tracklets' (if loaded)."""
        return self.num_gallery + (len(self.training) if self.training is not None else 0)

    def is_training_row(self, gallery_row: int | None) -> bool:
        """Whether a gallery-player row is a training tracklet (not in the ranked gallery)."""
        return gallery_row is not None and int(gallery_row) >= self.num_gallery

    def training_row(self, position: int) -> int:
        """The gallery-player row of the training set's ``position``-th tracklet."""
        return self.num_gallery + int(position)

    def query_tracklet(self, row: int) -> Tracklet:
        return self.dataset.tracklets[int(self.results.query_indices[row])]

    def gallery_tracklet(self, row: int) -> Tracklet:
        row = int(row)
        if row >= self.num_gallery and self.training is not None:
            return self.dataset.tracklets[int(self.training.dataset_indices[row - self.num_gallery])]
        return self.dataset.tracklets[int(self.results.gallery_indices[row])]

    def attention(self, tracklet_index: int) -> np.ndarray | None:
        """The tracklet's attention (K+1, T), or ``None`` when the model pools frames uniformly."""
        r = self.results
        if not self.has_attention:
            return None
        if r.has_attention(tracklet_index):
            return r.attention(tracklet_index)
        extra = getattr(self.training, "attention", None) or {}
        return extra.get(int(tracklet_index))

    def caption(self, t: Tracklet) -> str:
        return f"{person_label(t)} · {camera_label(t)} · {len(t)} frames"

    def frame_flags(self, tracklet_index: int) -> dict[int, str]:
        """Frame flags (0-based frame → label) of a tracklet."""
        return self.frame_flag_map.get(tracklet_index, {})

    def top_gallery_row(self, query_row: int) -> int | None:
        """The rank-1 retrieval of a query (``None`` when nothing is ranked)."""
        rows, _, _ = self.results.ranked(query_row, 1)
        return int(rows[0]) if len(rows) else None

    # ---------------------------------------------------------------- lists
    def query_rows(self) -> list[QueryRow]:
        r = self.results
        rows = []
        for q in range(r.num_queries):
            t = self.query_tracklet(q)
            rows.append(
                QueryRow(
                    row=q,
                    pid=int(t.pid),
                    person=t.person,
                    camera=camera_label(t),
                    frames=len(t),
                    ap=float(r.ap[q]) if r.valid[q] else float("nan"),
                    first_rank=int(r.first_rank[q]),
                    flagged=bool(self.frame_flag_map.get(t.index)),
                )
            )
        return rows

    def _tile(self, g_row: int, rank: int, distance: float, is_match: bool) -> TileData:
        t = self.gallery_tracklet(g_row)
        return TileData(g_row, rank, float(distance), bool(is_match), thumb_path(t), self.caption(t),
                        bool(self.frame_flag_map.get(t.index)))

    def ranked_tiles(self, query_row: int, k: int) -> list[TileData]:
        rows, dists, match = self.results.ranked(query_row, k)
        return [self._tile(int(g), i + 1, float(d), bool(m)) for i, (g, d, m) in enumerate(zip(rows, dists, match))]

    def truth_tiles(self, query_row: int) -> list[TileData]:
        rows, ranks, dists = self.results.true_matches(query_row)
        return [self._tile(int(g), int(rk), float(d), True) for g, rk, d in zip(rows, ranks, dists)]

    def ranking_header(self, query_row: int) -> str:
        t = self.query_tracklet(query_row)
        r = self.results
        ap = "n/a (no true match in the gallery)" if not r.valid[query_row] else f"{r.ap[query_row]:.3f}"
        return f"Ranked gallery for {person_label(t)} ({camera_label(t)}) — AP {ap}"

    def is_match(self, query_row: int, gallery_row: int) -> bool:
        if self.is_training_row(gallery_row):
            return bool(self.gallery_tracklet(gallery_row).pid == self.results.query_pids[query_row])
        return bool(self.results.gallery_pids[gallery_row] == self.results.query_pids[query_row])

    def rank_of(self, query_row: int, gallery_row: int) -> int | str:
        """1-based rank of a gallery row for a query ("removed" when the rule removes it)."""
        r = self.results
        if self.is_training_row(gallery_row):
            return "not ranked (training)"
        if r.removed_mask(query_row)[gallery_row]:
            return "removed (same camera)"
        if r.distmat is not None:
            d = r.distmat[query_row]
            keep = ~r.removed_mask(query_row)
            dg = d[gallery_row]
            closer = np.count_nonzero(keep & ((d < dg) | ((d == dg) & (np.arange(len(d)) < gallery_row))))
            return int(closer) + 1
        rows, _, _ = r.ranked(query_row, None)
        hit = np.flatnonzero(rows == gallery_row)
        return int(hit[0]) + 1 if len(hit) else f">{len(rows)}"

    def match_text(self, query_row: int, gallery_row: int) -> str:
        """Where a gallery tracklet ranks for a query and whether it is a true match."""
        mark = "✓ true match" if self.is_match(query_row, gallery_row) else "✗ false match"
        if self.is_training_row(gallery_row):
            return f"training tracklet (not ranked) · {'✓ same identity' if self.is_match(query_row, gallery_row) else '✗ other identity'}"
        return f"rank {self.rank_of(query_row, gallery_row)} · {mark}"

    def gallery_caption(self, query_row: int, gallery_row: int) -> str:
        """The tracklet, its rank and whether it is a true match, in one line."""
        return f"{self.caption(self.gallery_tracklet(gallery_row))} · {self.match_text(query_row, gallery_row)}"

    def failure_cases(self) -> list[FailureCase]:
        """Wrong-rank-1 queries, worst AP first (computed once: thousands on MARS)."""
        if self._failures is None:
            self._failures = self._compute_failures()
        return self._failures

    def invalidate(self) -> None:
        """Forget derived lists (after annotations changed the results)."""
        self._failures = None

    def _compute_failures(self) -> list[FailureCase]:
        r = self.results
        cases = []
        for q in r.failures():
            q = int(q)
            probe = self.query_tracklet(q)
            rows, dists, _ = r.ranked(q, 1)
            wrong = self.gallery_tracklet(int(rows[0]))
            t_rows, t_ranks, t_d = r.true_matches(q)
            true_t = self.gallery_tracklet(int(t_rows[0])) if len(t_rows) else None
            cases.append(
                FailureCase(
                    query_row=q,
                    probe_label=f"{probe.person} ({camera_label(probe)})",
                    probe_thumb=thumb_path(probe),
                    wrong_row=int(rows[0]),
                    wrong_label=f"{wrong.person} ({camera_label(wrong)})",
                    wrong_thumb=thumb_path(wrong),
                    wrong_distance=float(dists[0]),
                    true_row=int(t_rows[0]) if len(t_rows) else None,
                    true_label=f"{true_t.person} ({camera_label(true_t)})" if true_t else "",
                    true_thumb=thumb_path(true_t) if true_t else None,
                    true_rank=int(t_ranks[0]) if len(t_ranks) else 0,
                    true_distance=float(t_d[0]) if len(t_d) else float("nan"),
                    ap=float(r.ap[q]),
                )
            )
        return cases

    # ---------------------------------------------------------------- metrics
    def metrics(self) -> dict:
        return self.results.metrics()

    def per_query_ap(self) -> np.ndarray:
        return np.asarray(self.results.ap)

    def metrics_source(self) -> str:
        r = self.results
        m = r.metrics()
        rule = {"market1501": "same person and camera removed (torchreid)",
                "mars_official": "MARS's official rule"}.get(r.eval_rule, r.eval_rule)
        return (
            f"From the results file of {self.model} on {self.dataset.name} (protocol {self.dataset.protocol}), "
            f"split {r.split}, evaluation rule: {rule}; {m['valid_queries']} of {m['queries']} queries evaluated"
            + (f", {m['skipped_queries']} skipped (no true match in the gallery)" if m["skipped_queries"] else "")
            + f"; {r.num_gallery} gallery tracklets."
        )

    def audit_text(self) -> str:
        if self.audit is None or not self.has_attention:
            return ""
        a = self.audit
        values = " · ".join(f"k={k}: {v:.3f}" for k, v in enumerate(a.auroc))
        return f"Attention audit (AUROC of low attention vs occluded/flagged frames, {a.flagged} of {a.frames} frames flagged): {values}"


@dataclass
class Comparing:
    """Compare mode's second model: B's session (on A's dataset) and the ``Comparison`` of A and B.

    Attributes:
        session: model B's ``Session`` (the same dataset, flags and split as A's).
        comparison: ``reidviewer.engine.compare.Comparison`` of A (the state's session) and B.
    """

    session: Session
    comparison: object

    @property
    def name_a(self) -> str:
        return self.comparison.name_a

    @property
    def name_b(self) -> str:
        return self.comparison.name_b

    def query_rows(self, rows: list[QueryRow]) -> list[QueryRow]:
        """A's query rows with B's AP, first-match rank and fixed/broken mark filled in."""
        from dataclasses import replace

        c = self.comparison
        out = []
        for r in rows:
            q = r.row
            change = 1 if c.fixed_mask[q] else (-1 if c.broken_mask[q] else 0)
            ap_b = float(c.b.ap[q]) if c.b.valid[q] else float("nan")
            out.append(replace(r, ap_b=ap_b, first_rank_b=int(c.first_rank_b[q]), change=change))
        return out

    def sort_positions(self, key: str) -> np.ndarray:
        """``[row] -> place`` of each query under a compare sort (``fixed``, ``broken``, ``delta``)."""
        return self.comparison.positions(key)

    def swapped(self, session_a: Session) -> Comparing:
        """A and B exchanged: ``session_a`` (the state's current session) becomes model B."""
        return Comparing(session_a, self.comparison.swapped())

    def status(self, session_a: Session) -> str:
        """The status bar of compare mode: both models, their R1 and mAP, the McNemar counts."""
        ma, mb = session_a.metrics(), self.session.metrics()
        c = self.comparison
        return (f"{session_a.dataset.name}: {session_a.num_queries} queries · "
                f"A {self.name_a}: R1 {100 * ma['rank1']:.1f}%, mAP {100 * ma['mAP']:.1f}% · "
                f"B {self.name_b}: R1 {100 * mb['rank1']:.1f}%, mAP {100 * mb['mAP']:.1f}% · "
                f"B fixed {c.fixed}, broke {c.broken} (McNemar p = {c.mcnemar_p:.3g})")

    def metrics_lines(self) -> list[str]:
        """The McNemar line, the ΔmAP interval and the TPR at low FPR of both models."""
        c = self.comparison
        roc_a, roc_b = c.roc("a"), c.roc("b")

        def tpr(roc) -> str:
            return " / ".join(f"{100 * v:.1f}%" for v in roc.tpr_at.values())

        return [c.mcnemar_text(), c.ci_text(),
                f"TPR at FPR 1e-3 / 1e-2: A {tpr(roc_a)} · B {tpr(roc_b)}"]


def is_results_file(source: Path | str) -> bool:
    """Whether ``source`` names a saved results file (``.npz``) rather than a checkpoint or model."""
    return str(source).lower().endswith(".npz")


def load_comparison(session_a: Session, source: Path | str, workspace, progress: Progress | None = None,
                    cancel: threading.Event | None = None) -> Comparing:
    """Model B for compare mode: a checkpoint, a model reference (``model:NAME``) or a results file,
    evaluated (or loaded) on A's dataset and split, then paired with A (run it in a worker).

    Raises:
        ComparisonError: B does not rank the same queries against the same gallery as A.
    """
    from reidviewer.engine.compare import Comparison, results_name
    from reidviewer.engine.evaluate import compute_results
    from reidviewer.engine.results import Results

    progress = progress or (lambda d, t, s="": None)
    ra = session_a.results
    if is_results_file(source):
        progress(0, 1, "loading the results file")
        rb = Results.load(source)
        name_b = results_name(rb, Path(source).stem)
    else:
        rb = compute_results(session_a.dataset, ra.split, source, workspace, progress=progress, cancel=cancel,
                             annotation_version=ra.annotation_version)
        name_b = model_name(source)
    progress(0, 1, "pairing the two models")
    c = Comparison(ra, rb, model_name(session_a.checkpoint), name_b)
    c.bootstrap_delta_map()
    c.roc("a")
    c.roc("b")
    from dataclasses import replace

    b = Session(request=replace(session_a.request, checkpoint=Path(source)), dataset=session_a.dataset, results=rb,
                checkpoint=Path(source), frame_flag_map=session_a.frame_flag_map,
                base_dataset=session_a.base_dataset)
    return Comparing(b, c)


class Prefetch:
    """``load_session`` started in a plain thread before the window exists.

    A launch spends about a second importing the GUI libraries and building the window;
    opening the dataset and reading the cached results meanwhile shows them that much sooner.
    The window's job then waits on this one (``wait`` has a job function's signature),
    relaying its progress and its Cancel.
    """

    def __init__(self, request: OpenRequest, workspace) -> None:
        self.request = request
        self.cancel = threading.Event()
        self.latest: tuple[int, int, str] = (0, 0, "")
        self.result: Session | None = None
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._workspace = workspace
        threading.Thread(target=self._run, name="reidviewer-prefetch", daemon=True).start()

    def _progress(self, done: int, total: int, text: str = "") -> None:
        if self.cancel.is_set():
            from reidviewer.errors import Cancelled

            raise Cancelled("cancelled")
        self.latest = (done, total, text)

    def _run(self) -> None:
        try:
            self.result = load_session(self.request, self._workspace, self._progress, self.cancel)
        except BaseException as exc:  # noqa: BLE001 — handed to the window's job, which reports it
            self.error = exc
        finally:
            self.done.set()

    def wait(self, progress: Callable[..., None], cancel: threading.Event) -> Session:
        """The session, once loaded; ``progress`` hears the loading's progress meanwhile."""
        while not self.done.wait(0.05):
            if cancel.is_set():
                self.cancel.set()
            progress(*self.latest)
        if self.error is not None:
            raise self.error
        assert self.result is not None
        return self.result


#: Opening asks first when evaluating the split would take longer than this many minutes
#: (preprocessing and features together) or fill more than this many GB of frame cache (MARS:
#: ~9 GB and minutes of features; iLIDS-VID: seconds).
ASK_MINUTES = 1.0
ASK_GB = 1.0


def open_cost(request: OpenRequest, workspace) -> dict | None:
    """What opening ``request`` would first pay in preprocessing and features, when worth asking about.

    Opens the dataset (its index is cached) and reads the checkpoint's JSON; no image, no
    weights. None for the demo, for results already in the workspace, for model plugins and
    imported results, and for costs under ``ASK_MINUTES`` and ``ASK_GB``.
    """
    if request.root is None:
        return None
    from reidviewer.annotations.apply import open_annotated
    from reidviewer.data.registry import open_dataset
    from reidviewer.demo import default_checkpoint
    from reidviewer.engine.evaluate import evaluation_cost

    dataset = open_dataset(request.root, request.name, request.protocol, workspace)
    dataset, version = open_annotated(dataset, workspace)
    cost = evaluation_cost(dataset, request.split, request.checkpoint or default_checkpoint(), workspace,
                           annotation_version=version)
    if cost is None or (cost["minutes"] < ASK_MINUTES and cost["test_missing_gb"] < ASK_GB):
        return None
    return {**cost, "dataset": dataset.name, "split": request.split}


def describe_open_cost(cost: dict) -> str:
    """The question put to the user before an expensive open (``open_cost``): one line a step."""
    from reidviewer.data.cache import format_minutes
    from reidviewer.engine.evaluate import evaluation_steps

    steps = evaluation_steps(cost)
    work = "\n".join(f"• {step[0].upper()}{step[1:]}." for step in steps)
    total = f"\n{format_minutes(cost['minutes']).capitalize()} in all.\n" if len(steps) > 1 else ""
    kept = ("The frames and the results stay in the workspace" if cost["test_frames_missing"] > 0
            else "The results stay in the workspace")
    return (f"Showing split {cost['split']} of {cost['dataset']} ({cost['test_tracklets']:,} query and gallery "
            f"tracklets) first means:\n{work}\n{total}\n"
            f"The dataset folder is only read. {kept}, so the next opening takes seconds. You can cancel at "
            "any time; frames already preprocessed stay cached.\n\nOpen it now?")


def load_session(
    request: OpenRequest, workspace, progress: Progress | None = None, cancel: threading.Event | None = None
) -> Session:
    """Open the dataset (generating the demo on first launch) and load or compute its results."""
    from reidviewer.data.registry import open_dataset
    from reidviewer.demo import default_checkpoint, demo_is_ready, ensure_demo
    from reidviewer.engine.evaluate import compute_results

    progress = progress or (lambda d, t, s="": None)
    if request.root is None:
        if not demo_is_ready(workspace):
            text = "generating the SynthWalk demo (first launch only)"
            progress(0, 1, text)
            root = ensure_demo(workspace, progress=lambda d, t, *_: progress(d, t, text))
        else:
            root = ensure_demo(workspace)
        request = OpenRequest(root=root, name="synthwalk", protocol=None, checkpoint=request.checkpoint, split=request.split)
    progress(0, 1, "indexing the dataset")
    dataset = open_dataset(request.root, request.name, request.protocol, workspace)
    checkpoint = request.checkpoint or default_checkpoint()
    from reidviewer.annotations.apply import open_annotated

    base_dataset = dataset
    # Corrected identities when the workspace holds annotations; the version keys the results.
    dataset, version = open_annotated(base_dataset, workspace)
    results = compute_results(dataset, request.split, checkpoint, workspace, progress=progress, cancel=cancel,
                              annotation_version=version)
    audit = None
    if dataset.occlusion:
        try:
            from reidviewer.engine.evaluate import occlusion_audit

            audit = occlusion_audit(dataset, results)
        except Exception:  # noqa: BLE001 — the audit is an extra; never block opening the results
            audit = None
    return Session(request=request, dataset=dataset, results=results, checkpoint=Path(checkpoint), audit=audit,
                   base_dataset=base_dataset).prepare()
