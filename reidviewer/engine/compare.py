"""Two models on the same queries and gallery: what B changed against A, and whether it is chance.

``Comparison(a, b)`` pairs two ``Results`` of one dataset split (two checkpoints, a plugin model,
imported results ...). It refuses results that do not rank the very same query tracklets against
the very same gallery (``ComparisonError``, naming both). Then, per query:

* ``delta_ap`` = AP(B) − AP(A) (NaN for queries skipped by the rule: no true match);
* ``first_rank_a`` → ``first_rank_b``: where the first true match landed with each model;
* ``fixed``: right at rank 1 only with B; ``broken``: right at rank 1 only with A.

And for the whole split:

* ``mcnemar_p``: the exact two-sided McNemar test on the rank-1 discordant pairs, i.e. a
  two-sided binomial test of ``fixed`` successes in ``fixed + broken`` trials at p = ½;
* ``bootstrap_delta_map``: a paired bootstrap confidence interval of ΔmAP (queries resampled
  with replacement, the same resample for both models; seeded, vectorised);
* ``roc(side)``: positive / negative pair distances, the ROC curve and the TPR at FPR 1e-3 and
  1e-2 (fast-reid reports these). Exact from the stored distances: negatives are counted
  against thresholds found by ``np.partition``, never by a Python loop over pairs.

Everything is numpy; the module imports neither Qt nor torch nor scipy.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from reidviewer.engine.metrics import JUNK_PID
from reidviewer.errors import ReidViewerError

#: The false-positive rates whose TPR is reported (fast-reid's ROC summary).
ROC_FPRS = (1e-3, 1e-2)
#: Bootstrap resamples of ΔmAP and the default confidence level.
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_LEVEL = 0.95
#: Sort keys of compare mode's query list (engine names; the app and the CLI label them).
COMPARE_SORTS = ("fixed", "broken", "delta")


class ComparisonError(ReidViewerError):
    """Two results cannot be compared: they do not rank the same queries against the same gallery.

    Args:
        name_a, name_b: the two models (or files), as people call them.
        problem: what differs.
    """

    def __init__(self, name_a: str, name_b: str, problem: str) -> None:
        self.name_a = name_a
        self.name_b = name_b
        self.problem = problem
        super().__init__(f"cannot compare {name_a} with {name_b}: {problem}")


def results_name(results: Any, fallback: str) -> str:
    """How a results file is called: its checkpoint's (or model's) file stem, else ``fallback``."""
    from pathlib import Path

    settings = results.settings if isinstance(getattr(results, "settings", None), dict) else {}
    ck = settings.get("checkpoint") or settings.get("model_ref")
    if ck:
        text = str(ck)
        if text.startswith("model:"):
            text = text[len("model:"):]
            return text[len("imported:"):] if text.startswith("imported:") else text
        return Path(text).stem
    return fallback


def check_comparable(a: Any, b: Any, name_a: str = "A", name_b: str = "B") -> None:
    """Raise ``ComparisonError`` unless ``a`` and ``b`` rank the same queries against the same gallery.

    Compared: the numbers of query and gallery tracklets, their dataset indices, their keys
    (where both files store them), their identities and cameras, and the evaluation rule.
    """
    def fail(problem: str) -> None:
        raise ComparisonError(name_a, name_b, problem)

    if a.num_queries != b.num_queries:
        fail(f"{a.num_queries} queries against {b.num_queries}; both must be evaluated on the same dataset split")
    if a.num_gallery != b.num_gallery:
        fail(f"{a.num_gallery} gallery tracklets against {b.num_gallery}; both must use the same gallery")
    for side in ("query", "gallery"):
        if not np.array_equal(getattr(a, f"{side}_indices"), getattr(b, f"{side}_indices")):
            fail(f"their {side} tracklets differ (another dataset, split or protocol?)")
        ka, kb = getattr(a, f"{side}_keys"), getattr(b, f"{side}_keys")
        if all(ka) and all(kb) and list(ka) != list(kb):
            bad = next(i for i, (x, y) in enumerate(zip(ka, kb)) if x != y)
            fail(f"{side} tracklet {bad} is {ka[bad]!r} in one and {kb[bad]!r} in the other")
        if not np.array_equal(getattr(a, f"{side}_pids"), getattr(b, f"{side}_pids")):
            fail(f"the {side} identities differ (annotations applied to one of them only?)")
        if not np.array_equal(getattr(a, f"{side}_camids"), getattr(b, f"{side}_camids")):
            fail(f"the {side} cameras differ")
    if a.eval_rule != b.eval_rule:
        fail(f"evaluation rule {a.eval_rule!r} against {b.eval_rule!r}")
    if a.dataset_fingerprint and b.dataset_fingerprint and a.dataset_fingerprint != b.dataset_fingerprint \
            and not (all(a.query_keys) and all(b.query_keys)):
        fail("they were computed on different datasets")


def mcnemar_exact(fixed: int, broken: int) -> float:
    """Exact two-sided McNemar p-value from the discordant counts.

    Under the null each discordant query is as likely fixed as broken, so ``fixed`` is
    Binomial(n = fixed + broken, ½); the two-sided p is twice the smaller tail, capped at 1
    (what ``scipy.stats.binomtest(..., p=0.5)`` gives, since the distribution is symmetric).
    1.0 when there is no discordant query.
    """
    fixed, broken = int(fixed), int(broken)
    n = fixed + broken
    if n == 0:
        return 1.0
    k = min(fixed, broken)
    # log-space sum of C(n, i) / 2^n for i <= k, stable for large n.
    logs = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)])
    top = logs.max()
    tail = math.exp(top - n * math.log(2.0)) * float(np.exp(logs - top).sum())
    return float(min(1.0, 2.0 * tail))


@dataclass(frozen=True)
class Roc:
    """Verification view of one model's distances: every (query, gallery) pair the rule keeps.

    Attributes:
        fpr, tpr: the ROC curve (ascending FPR, log-spaced from 1e-4 to 1).
        tpr_at: TPR at each FPR of ``ROC_FPRS`` (a true match counts when its distance is
            at most the threshold that lets that fraction of negatives through).
        positives, negatives: numbers of positive and negative pairs.
        bins: histogram bin edges of the distances (shared by both histograms).
        pos_hist, neg_hist: histograms of the positive and negative pair distances, as densities.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    tpr_at: dict[float, float]
    positives: int
    negatives: int
    bins: np.ndarray
    pos_hist: np.ndarray
    neg_hist: np.ndarray


class _Negatives:
    """The distances of every negative pair (different identity, kept by the rule), for ROC.

    From a full matrix, the negatives are never gathered: the whole matrix is sorted once
    (``np.sort`` of float32 is SIMD-fast) and the few pairs that are not negatives — same
    identity, and the junk gallery items the official MARS rule ignores — are sorted apart
    and subtracted when counting. From a top-k file only each query's stored nearest items are
    known, so only those negatives are used (the low-FPR end is what they decide).
    """

    def __init__(self, r: Any, sample: int = 300_000) -> None:
        qp, gp = r.query_pids, r.gallery_pids
        rng = np.random.default_rng(0)
        if r.distmat is not None:
            dm = r.distmat
            nq, ng = dm.shape
            keep_g = gp != JUNK_PID if r.eval_rule == "mars_official" else np.ones(ng, dtype=bool)
            self.all = np.sort(dm, axis=None)
            parts = [dm[:, ~keep_g].ravel()]
            # Same-identity pairs on kept columns, by pid group (few per query).
            cols = np.flatnonzero(keep_g)
            order = cols[np.argsort(gp[cols], kind="stable")]
            pv, starts = np.unique(gp[order], return_index=True)
            ends = np.append(starts[1:], len(order))
            slot = np.clip(np.searchsorted(pv, qp), 0, max(len(pv) - 1, 0))
            found = pv[slot] == qp if len(pv) else np.zeros(nq, dtype=bool)
            counts = np.where(found, ends[slot] - starts[slot], 0)
            q_rep = np.repeat(np.arange(nq), counts)
            offs = np.repeat(np.where(found, starts[slot], 0) - np.cumsum(counts) + counts, counts)
            g_rep = order[np.arange(len(q_rep)) + offs] if len(q_rep) else np.zeros(0, np.int64)
            parts.append(dm[q_rep, g_rep])
            self.excluded = np.sort(np.concatenate(parts))
            self.count = int(self.all.size - self.excluded.size)
            idx = rng.integers(0, nq * ng, min(sample, nq * ng)) if nq * ng else np.zeros(0, np.int64)
            qi, gi = idx // ng, idx % ng
            neg = (gp[gi] != qp[qi]) & keep_g[gi]
            self.sample = dm.ravel()[idx[neg]]
        else:
            rows, dist = r.topk_rows, r.topk_distances
            ok = rows >= 0
            negs = np.sort(dist[ok & (gp[np.maximum(rows, 0)] != qp[:, None])])
            self.all, self.excluded, self.count = negs, np.zeros(0, np.float32), int(negs.size)
            self.sample = negs if negs.size <= sample else negs[rng.integers(0, negs.size, sample)]

    def kth(self, ks: np.ndarray) -> np.ndarray:
        """The ``k``-th smallest negative distance (0-based) for each ``k`` (binary search)."""
        out = np.empty(len(ks), dtype=np.float64)
        for i, k in enumerate(np.asarray(ks, dtype=np.int64)):
            lo, hi = int(k), int(self.all.size - 1)  # at least k + 1 values up to the answer
            while lo < hi:
                mid = (lo + hi) // 2
                n_neg = mid + 1 - int(np.searchsorted(self.excluded, self.all[mid], side="right"))
                if n_neg >= k + 1:
                    hi = mid
                else:
                    lo = mid + 1
            out[i] = self.all[lo]
        return out


def compute_roc(r: Any, fprs: tuple[float, ...] = ROC_FPRS, bins: int = 60) -> Roc:
    """The ROC of one results file's pair distances (see ``Roc``); vectorised, exact."""
    pos = np.sort(np.asarray(r.match_distances, dtype=np.float32))
    neg = _Negatives(r)
    n_neg = neg.count
    grid = np.unique(np.concatenate([np.logspace(-4, 0, 41), np.asarray(fprs, dtype=np.float64)]))
    if n_neg == 0 or len(pos) == 0:
        nan = np.full(len(grid), np.nan)
        return Roc(grid, nan, {f: float("nan") for f in fprs}, len(pos), n_neg, np.linspace(0, 1, bins + 1),
                   np.zeros(bins), np.zeros(bins))
    # The threshold admitting a fraction f of negatives is the floor(f * n)-th smallest negative
    # (exclusive): a pair is accepted when its distance is strictly below it.
    ks = np.clip(np.floor(grid * n_neg).astype(np.int64), 0, n_neg - 1)
    thr = neg.kth(ks)
    thr = np.where(grid >= 1.0, np.inf, thr)
    tpr = np.searchsorted(pos, thr, side="left") / len(pos)
    fpr_real = np.where(grid >= 1.0, 1.0, ks / n_neg)
    tpr_at = {f: float(tpr[int(np.argmin(np.abs(grid - f)))]) for f in fprs}
    sample = neg.sample
    lo = float(min(pos[0], thr[0]))
    hi = float(max(np.percentile(pos, 99.5), np.percentile(sample, 99.5)))
    edges = np.linspace(lo, hi if hi > lo else lo + 1.0, bins + 1)
    ph, _ = np.histogram(pos, edges, density=True)
    nh, _ = np.histogram(sample, edges, density=True)
    return Roc(fpr_real, tpr, tpr_at, len(pos), n_neg, edges, ph, nh)


@dataclass
class Comparison:
    """Model B against model A on the same queries and gallery (see the module docstring).

    Args:
        a, b: two ``reidviewer.engine.results.Results``.
        name_a, name_b: how people call the two models (default: from the results' checkpoints).

    Raises:
        ComparisonError: the two results do not rank the same queries against the same gallery.
    """

    a: Any
    b: Any
    name_a: str = ""
    name_b: str = ""
    _roc: dict[str, Roc] = field(default_factory=dict, repr=False)
    _ci: dict[tuple, tuple[float, float]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.name_a = self.name_a or results_name(self.a, "A")
        self.name_b = self.name_b or results_name(self.b, "B")
        if self.name_a == self.name_b:
            self.name_a, self.name_b = f"{self.name_a} (A)", f"{self.name_b} (B)"
        check_comparable(self.a, self.b, self.name_a, self.name_b)
        a, b = self.a, self.b
        self.valid = np.asarray(a.valid, dtype=bool) & np.asarray(b.valid, dtype=bool)
        self.ap_a = np.where(self.valid, a.ap, np.nan)
        self.ap_b = np.where(self.valid, b.ap, np.nan)
        self.delta_ap = self.ap_b - self.ap_a
        self.first_rank_a = np.asarray(a.first_rank, dtype=np.int64)
        self.first_rank_b = np.asarray(b.first_rank, dtype=np.int64)
        self.hit_a = self.valid & (self.first_rank_a == 1)
        self.hit_b = self.valid & (self.first_rank_b == 1)
        self.fixed_mask = self.hit_b & ~self.hit_a
        self.broken_mask = self.hit_a & ~self.hit_b

    # ------------------------------------------------------------------ counts
    @property
    def num_queries(self) -> int:
        """Query tracklets compared (skipped ones included; they count in neither list)."""
        return int(self.a.num_queries)

    @property
    def fixed(self) -> int:
        """Queries right at rank 1 only with B."""
        return int(np.count_nonzero(self.fixed_mask))

    @property
    def broken(self) -> int:
        """Queries right at rank 1 only with A."""
        return int(np.count_nonzero(self.broken_mask))

    @property
    def both_right(self) -> int:
        return int(np.count_nonzero(self.hit_a & self.hit_b))

    @property
    def both_wrong(self) -> int:
        return int(np.count_nonzero(self.valid & ~self.hit_a & ~self.hit_b))

    @property
    def mcnemar_p(self) -> float:
        """Exact two-sided McNemar p on the rank-1 discordant pairs."""
        return mcnemar_exact(self.fixed, self.broken)

    @property
    def delta_map(self) -> float:
        """mAP(B) − mAP(A) over the queries both evaluate."""
        d = self.delta_ap[self.valid]
        return float(d.mean()) if len(d) else float("nan")

    def fixed_rows(self) -> np.ndarray:
        """Query rows fixed by B, largest AP gain first (then by row)."""
        rows = np.flatnonzero(self.fixed_mask)
        return rows[np.lexsort((rows, -self.delta_ap[rows]))]

    def broken_rows(self) -> np.ndarray:
        """Query rows broken by B, largest AP loss first (then by row)."""
        rows = np.flatnonzero(self.broken_mask)
        return rows[np.lexsort((rows, self.delta_ap[rows]))]

    # ------------------------------------------------------------------ statistics
    def bootstrap_delta_map(self, resamples: int = BOOTSTRAP_RESAMPLES, level: float = BOOTSTRAP_LEVEL,
                            seed: int = 0) -> tuple[float, float]:
        """Paired percentile-bootstrap confidence interval of ΔmAP (seeded, so repeatable).

        Each resample draws the evaluated queries with replacement and takes the mean of their
        ΔAP: the same queries for A and B, which is what makes it paired. Vectorised in blocks
        of resamples (memory stays under ~40 MB at MARS scale).
        """
        key = (int(resamples), float(level), int(seed))
        if key in self._ci:
            return self._ci[key]
        d = self.delta_ap[self.valid].astype(np.float64)
        m = len(d)
        if m == 0:
            return float("nan"), float("nan")
        rng = np.random.default_rng(seed)
        means = np.empty(int(resamples))
        block = max(1, 4_000_000 // m)
        for s in range(0, int(resamples), block):
            e = min(int(resamples), s + block)
            idx = rng.integers(0, m, size=(e - s, m))
            means[s:e] = d[idx].mean(axis=1)
        alpha = (1.0 - level) / 2.0
        lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
        self._ci[key] = (float(lo), float(hi))
        return self._ci[key]

    def roc(self, side: str) -> Roc:
        """The ROC of model ``"a"`` or ``"b"`` (computed once)."""
        if side not in ("a", "b"):
            raise ValueError(f"side must be 'a' or 'b', not {side!r}")
        if side not in self._roc:
            self._roc[side] = compute_roc(self.a if side == "a" else self.b)
        return self._roc[side]

    # ------------------------------------------------------------------ ordering
    def order(self, key: str) -> np.ndarray:
        """Query rows in the order of a compare sort.

        ``fixed``: queries fixed by B first (largest ΔAP first), then every other query by ΔAP
        descending; ``broken``: queries broken by B first (largest AP loss first), then the
        rest by ΔAP ascending; ``delta``: largest |ΔAP| first. Skipped queries come last;
        ties keep row order.
        """
        n = self.num_queries
        rows = np.arange(n)
        d = np.where(self.valid, self.delta_ap, 0.0)
        skipped = ~self.valid
        if key == "fixed":
            return np.lexsort((rows, -d, ~self.fixed_mask, skipped))
        if key == "broken":
            return np.lexsort((rows, d, ~self.broken_mask, skipped))
        if key == "delta":
            return np.lexsort((rows, -np.abs(d), skipped))
        raise ValueError(f"unknown compare sort {key!r}; expected one of {', '.join(COMPARE_SORTS)}")

    def positions(self, key: str) -> np.ndarray:
        """``positions(key)[row]`` is the row's place (0 = first) in ``order(key)``."""
        pos = np.empty(self.num_queries, dtype=np.int64)
        pos[self.order(key)] = np.arange(self.num_queries)
        return pos

    def swapped(self) -> Comparison:
        """The same comparison with A and B exchanged."""
        return Comparison(self.b, self.a, self.name_b, self.name_a)

    # ------------------------------------------------------------------ reports
    def mcnemar_text(self) -> str:
        """``McNemar (rank-1): B fixed 12, broke 4 of 200 queries, exact p = 0.077``."""
        p = self.mcnemar_p
        ptxt = f"{p:.2g}" if p < 0.001 else f"{p:.3f}"
        return (f"McNemar (rank-1): {self.name_b} fixed {self.fixed}, broke {self.broken} of "
                f"{self.num_queries} queries (vs {self.name_a}); exact two-sided p = {ptxt}")

    def ci_text(self, resamples: int = BOOTSTRAP_RESAMPLES, level: float = BOOTSTRAP_LEVEL) -> str:
        """``ΔmAP (B − A) = +3.1 points, 95% CI [+1.0, +5.2] (paired bootstrap, 2000 resamples)``."""
        lo, hi = self.bootstrap_delta_map(resamples, level)
        return (f"ΔmAP ({self.name_b} − {self.name_a}) = {100 * self.delta_map:+.1f} points, "
                f"{round(100 * level)}% CI [{100 * lo:+.1f}, {100 * hi:+.1f}] (paired bootstrap, {resamples} resamples)")

    def summary(self, key_of: Any = None, top: int | None = None, roc: bool = True) -> dict[str, Any]:
        """The JSON of ``reidviewer compare``: both models' metrics, counts, p, CI, ROC, query lists.

        Args:
            key_of: ``row -> identifier`` of a query (default: its tracklet key, else its row).
            top: list at most this many fixed / broken queries (None: all).
            roc: include the TPR at FPR 1e-3 / 1e-2 of each model.
        """
        def ident(row: int) -> Any:
            if key_of is not None:
                return key_of(int(row))
            k = self.a.query_keys[int(row)]
            return k if k else int(row)

        def side(r: Any, name: str) -> dict[str, Any]:
            m = r.metrics()
            out = {"name": name,
                   **{k: m[k] for k in ("rank1", "rank5", "rank10", "rank20", "mAP", "mINP")},
                   "cmc": m["cmc"], "queries": m["queries"], "valid_queries": m["valid_queries"]}
            ck = r.settings.get("checkpoint") if isinstance(r.settings, dict) else None
            if ck:
                out["checkpoint"] = str(ck)
            return out

        fixed_rows, broken_rows = self.fixed_rows(), self.broken_rows()
        if top is not None:
            fixed_rows, broken_rows = fixed_rows[:top], broken_rows[:top]
        lo, hi = self.bootstrap_delta_map()
        out: dict[str, Any] = {
            "a": side(self.a, self.name_a),
            "b": side(self.b, self.name_b),
            "dataset": self.a.dataset_name,
            "protocol": self.a.protocol,
            "split": self.a.split,
            "num_queries": self.num_queries,
            "valid_queries": int(np.count_nonzero(self.valid)),
            "fixed": self.fixed,
            "broken": self.broken,
            "both_right": self.both_right,
            "both_wrong": self.both_wrong,
            "mcnemar_p": self.mcnemar_p,
            "delta_mAP": self.delta_map,
            "delta_mAP_ci": [lo, hi],
            "delta_mAP_ci_level": BOOTSTRAP_LEVEL,
            "bootstrap_resamples": BOOTSTRAP_RESAMPLES,
            "fixed_queries": [ident(r) for r in fixed_rows],
            "broken_queries": [ident(r) for r in broken_rows],
            "fixed_rows": [int(r) for r in fixed_rows],
            "broken_rows": [int(r) for r in broken_rows],
        }
        if roc:
            for s in ("a", "b"):
                rc = self.roc(s)
                out[s]["tpr_at_fpr"] = {f"{f:g}": rc.tpr_at[f] for f in ROC_FPRS}
        return out
