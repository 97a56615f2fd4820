"""What the views show, computed from a dataset and its results file (no widgets here).

``load_session`` runs in a worker: it opens the dataset, generates the SynthWalk demo on
first launch, and loads or computes the results file (cached in the workspace). The
``Session`` then answers the views' questions — query rows, ranked tiles, failure cases,
metrics — always from that one results file.
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from reidviewer.app.failures_view import FailureCase
from reidviewer.app.query_list import QueryRow
from reidviewer.app.ranked_view import TileData
from reidviewer.data.dataset import VideoDataset
from reidviewer.data.tracklet import Tracklet

Progress = Callable[[int, int, str], None]


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
        ck = f", checkpoint {self.checkpoint.name}" if self.checkpoint else ""
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


def person_label(t: Tracklet) -> str:
    """``person006`` stays as it is; a bare id such as ``0042`` becomes ``person 0042``."""
    return t.person if t.person.lower().startswith("person") else f"person {t.person}"


def thumb_path(tracklet: Tracklet) -> str:
    """The frame that stands for a tracklet in thumbnails (the middle one)."""
    return str(tracklet.frame_path(len(tracklet) // 2))


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

    def prepare(self) -> Session:
        """Compute the lists the views need up front (call it in the worker, off the GUI thread)."""
        self.failure_cases()
        return self
    #: The dataset as its reader opened it, when ``dataset`` is an annotated view (the
    #: annotation store is keyed and attached by the original); ``None``: ``dataset`` itself.
    base_dataset: VideoDataset | None = None

    # ---------------------------------------------------------------- basics
    @property
    def title(self) -> str:
        return f"{self.dataset.name} ({self.dataset.protocol}) · split {self.results.split} · {self.checkpoint.name}"

    @property
    def status(self) -> str:
        m = self.results.metrics()
        return (
            f"{self.dataset.name}: {self.results.num_queries} queries, {self.results.num_gallery} gallery · "
            f"R1 {100 * m['rank1']:.1f}% · mAP {100 * m['mAP']:.1f}% · {self.checkpoint.name}"
        )

    @property
    def num_queries(self) -> int:
        return self.results.num_queries

    @property
    def num_iterations(self) -> int:
        return max(1, self.results.attention_iterations)

    def query_tracklet(self, row: int) -> Tracklet:
        return self.dataset.tracklets[int(self.results.query_indices[row])]

    def gallery_tracklet(self, row: int) -> Tracklet:
        return self.dataset.tracklets[int(self.results.gallery_indices[row])]

    def attention(self, tracklet_index: int) -> np.ndarray | None:
        r = self.results
        return r.attention(tracklet_index) if r.has_attention(tracklet_index) else None

    def caption(self, t: Tracklet) -> str:
        return f"{person_label(t)} · {t.camera} · {len(t)} frames"

    def frame_flags(self, tracklet_index: int) -> dict[int, str]:
        return self.frame_flag_map.get(tracklet_index, {})

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
                    camera=t.camera,
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
        return f"Ranked gallery for {person_label(t)} ({t.camera}) — AP {ap}"

    def is_match(self, query_row: int, gallery_row: int) -> bool:
        return bool(self.results.gallery_pids[gallery_row] == self.results.query_pids[query_row])

    def rank_of(self, query_row: int, gallery_row: int) -> int | str:
        """1-based rank of a gallery row for a query ("removed" when the rule removes it)."""
        r = self.results
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

    def failure_cases(self) -> list[FailureCase]:
        """Wrong-rank-1 queries, worst AP first (computed once: thousands on MARS)."""
        if self._failures is None:
            self._failures = self._compute_failures()
        return self._failures

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
                    probe_label=f"{probe.person} ({probe.camera})",
                    probe_thumb=thumb_path(probe),
                    wrong_row=int(rows[0]),
                    wrong_label=f"{wrong.person} ({wrong.camera})",
                    wrong_thumb=thumb_path(wrong),
                    wrong_distance=float(dists[0]),
                    true_row=int(t_rows[0]) if len(t_rows) else None,
                    true_label=f"{true_t.person} ({true_t.camera})" if true_t else "",
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
        return (
            f"From the results file of {self.checkpoint.name} on {self.dataset.name} ({self.dataset.protocol}), "
            f"split {r.split}, rule {r.eval_rule}: {m['valid_queries']} of {m['queries']} queries evaluated"
            + (f", {m['skipped_queries']} skipped (no true match in the gallery)" if m["skipped_queries"] else "")
            + f"; {r.num_gallery} gallery tracklets."
        )

    def audit_text(self) -> str:
        if self.audit is None:
            return ""
        a = self.audit
        values = " · ".join(f"k={k}: {v:.3f}" for k, v in enumerate(a.auroc))
        return f"Attention audit (AUROC of low attention vs occluded/flagged frames, {a.flagged} of {a.frames} frames flagged): {values}"


def load_session(
    request: OpenRequest, workspace, progress: Progress | None = None, cancel: threading.Event | None = None
) -> Session:
    """Open the dataset (generating the demo on first launch) and load or compute its results."""
    from reidviewer.data.registry import open_dataset
    from reidviewer.engine.evaluate import compute_results, default_checkpoint

    progress = progress or (lambda d, t, s="": None)
    if request.root is None:
        from reidviewer.cli import ensure_demo

        progress(0, 1, "generating the SynthWalk demo (first launch only)")
        root = ensure_demo(workspace, progress=lambda d, t: progress(d, t, "generating the SynthWalk demo (first launch only)"))
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
                   base_dataset=base_dataset)
