"""Re-ID ranking metrics: CMC, mAP, per-query AP and first-true-match rank.

Two ranking rules (``reidviewer.data.dataset.EVAL_RULES``):

``market1501``
    torchreid's ``eval_market1501``: for each query the gallery is ranked by distance; gallery
    items with the query's pid **and** camid are removed (never for an unknown camera, camid
    -1: two tracklets of unknown camera are not known to share one); CMC is the first-hit indicator
    cumulated and clipped at 1; AP is the mean over the hits of precision@hit (not
    interpolated); a query with no match left is skipped and left out of every average.
``mars_official``
    the MARS MATLAB evaluation (``evaluation_mars.m`` / ``compute_AP.m``): gallery items with
    pid -1 are junk and ignored too, and AP uses the trapezoidal rule: at each hit
    ``(precision before + precision at the hit) / 2`` times the recall step ``1/n_matches``,
    where "precision before" is the precision at the previous (non-junk) position, 1 at rank 1.

This module is written by hand, with numpy only, because it must reproduce torchreid's
``eval_market1501`` number for number and torchreid is not a dependency of reidviewer.

**Ties.** torchreid ranks with ``np.argsort(distmat, axis=1)`` (introsort, or a SIMD sort in
recent numpy): the order of equal distances is unspecified and may change between numpy
versions or machines. We fix it: equal distances are ordered by gallery column, lowest first
(what a *stable* argsort gives). With no ties the result is torchreid's exactly; with ties it is
what torchreid would give if its argsort were stable.

**How it scales.** torchreid builds the full ``argsort`` (int64) and ``matches`` matrices:
for MARS (1,980 x 9,330) that is ~220 MB and about a second. AP only needs the ranks of each
query's few true matches among the valid gallery items, and the rank of a match is the number
of valid items that precede it. So queries are processed in chunks of rows: each chunk's rows
are sorted (values only, which numpy does with SIMD and no index array), the count of items
strictly closer than each match is a ``searchsorted`` into the sorted row, equal distances are
resolved by column index, and the items the rule removes (same pid and camid) are subtracted
from the count explicitly — they are few per query. Memory stays at a few chunk-sized arrays.

Aggregates (CMC, mAP) are always computed from the per-query arrays (``per_query`` ->
``summarize``), so a per-query number and the headline metric can never disagree.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from reidviewer.data.dataset import EVAL_RULES
from reidviewer.data.tracklet import UNKNOWN_CAMERA

#: Junk identity of MARS (``00-1`` folder): ignored by the ``mars_official`` rule.
JUNK_PID = -1

#: Query rows handled per chunk; a chunk's sorted copy is ``chunk * num_gallery`` values.
DEFAULT_CHUNK = 256

RowsFn = Callable[[int, int], np.ndarray]


def _as_ids(name: str, values: Any, n: int | None = None) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
    if n is not None and len(arr) != n:
        raise ValueError(f"{name} has {len(arr)} entries, expected {n}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.equal(np.mod(arr, 1), 0)):
            raise ValueError(f"{name} must hold integers")
    return arr.astype(np.int64, copy=False)


def _check_rule(rule: str) -> None:
    if rule not in EVAL_RULES:
        raise ValueError(f"unknown evaluation rule {rule!r}; expected one of {', '.join(EVAL_RULES)}")


def rank_queries(
    rows: RowsFn,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    rule: str = "market1501",
    chunk: int = DEFAULT_CHUNK,
    topk: int = 0,
) -> dict[str, Any]:
    """The one core routine: per-query ranks of every true match (and optional top-k lists).

    Args:
        rows: ``rows(start, stop)`` returns the distance rows of queries ``start:stop`` as a
            2-D float array of shape ``(stop - start, num_gallery)`` (a slice of a distance
            matrix, or distances computed on the fly so a huge matrix never exists).
        q_pids, g_pids, q_camids, g_camids: integer identity and camera labels.
        rule: ``"market1501"`` (torchreid) or ``"mars_official"``.
        chunk: query rows per chunk (memory vs. Python overhead).
        topk: if > 0, also return the ``topk`` nearest valid gallery items of every query.

    Returns:
        The dictionary described in ``per_query``; with ``topk`` also ``topk_rows`` (int64
        ``(Nq, topk)``, -1 padded) and ``topk_distances`` (float32, ``inf`` padded).

    Raises:
        ValueError: inconsistent shapes, an unknown rule, or a NaN distance.
    """
    _check_rule(rule)
    q_pids = _as_ids("q_pids", q_pids)
    nq = len(q_pids)
    q_camids = _as_ids("q_camids", q_camids, nq)
    g_pids = _as_ids("g_pids", g_pids)
    ng = len(g_pids)
    g_camids = _as_ids("g_camids", g_camids, ng)
    chunk = max(1, int(chunk))

    # Columns the rule keeps for every query (the official rule drops pid -1 for all queries at
    # once, so it is cheaper to remove those columns from each chunk than to subtract them).
    if rule == "mars_official":
        keep = np.flatnonzero(g_pids != JUNK_PID)
    else:
        keep = np.arange(ng)
    drop_cols = len(keep) != ng
    kp, kc = g_pids[keep], g_camids[keep]

    # Kept columns grouped by pid (stable, so ascending column order within each pid).
    by_pid = np.argsort(kp, kind="stable")
    pid_values, pid_starts = np.unique(kp[by_pid], return_index=True)
    pid_ends = np.append(pid_starts[1:], len(by_pid))

    num_matches = np.zeros(nq, dtype=np.int64)
    num_valid_gallery = np.zeros(nq, dtype=np.int64)
    match_rows_parts: list[np.ndarray] = []
    match_ranks_parts: list[np.ndarray] = []
    match_dist_parts: list[np.ndarray] = []
    if topk > 0:
        topk_rows = np.full((nq, topk), -1, dtype=np.int64)
        topk_dist = np.full((nq, topk), np.inf, dtype=np.float32)

    # Each query's pid block in ``by_pid`` (``found`` is False when the gallery lacks the pid).
    slot = np.minimum(np.searchsorted(pid_values, q_pids), max(len(pid_values) - 1, 0))
    found = (pid_values[slot] == q_pids) if len(pid_values) else np.zeros(nq, dtype=bool)

    empty_i = np.zeros(0, dtype=np.int64)
    for start in range(0, nq, chunk):
        stop = min(nq, start + chunk)
        block = np.asarray(rows(start, stop))
        if block.shape != (stop - start, ng):
            raise ValueError(
                f"distance rows {start}:{stop} have shape {block.shape}, expected {(stop - start, ng)}"
            )
        if drop_cols:
            block = block[:, keep]
        ordered = np.sort(block, axis=1)
        # np.sort puts NaN last, so one look at the last column finds any.
        if ordered.shape[1] and np.isnan(ordered[:, -1]).any():
            bad = start + int(np.flatnonzero(np.isnan(ordered[:, -1]))[0])
            raise ValueError(f"the distance matrix holds NaN (query row {bad})")
        for i in range(stop - start):
            q = start + i
            d = block[i]
            s = ordered[i]
            if found[q]:
                cols = by_pid[pid_starts[slot[q]] : pid_ends[slot[q]]]
                # An unknown camera (-1) is never "the same camera": nothing is removed for it.
                same_cam = (kc[cols] == q_camids[q]) & (kc[cols] != UNKNOWN_CAMERA)
                match, ign = cols[~same_cam], cols[same_cam]
            else:
                match, ign = empty_i, empty_i
            num_valid_gallery[q] = len(keep) - len(ign)
            if topk > 0:
                _topk_row(d, s, ign, keep, topk, topk_rows[q], topk_dist[q])
            k = len(match)
            num_matches[q] = k
            if k == 0:
                continue
            md = d[match]
            order = np.lexsort((match, md))
            match, md = match[order], md[order]
            # Items of the row (removed ones included) strictly closer than each match ...
            lt = np.searchsorted(s, md, side="left")
            le = np.searchsorted(s, md, side="right")
            pos = lt.astype(np.int64)
            # ... plus items at exactly the same distance with a lower column (the tie rule;
            # le - lt counts the match itself, so > 1 means a real tie) ...
            for h in np.flatnonzero(le - lt > 1):
                pos[h] += np.count_nonzero(np.flatnonzero(d == md[h]) < match[h])
            # ... minus the removed same-pid-same-camid items that precede it by the same rule.
            if len(ign):
                di = d[ign]
                before = (di[None, :] < md[:, None]) | (
                    (di[None, :] == md[:, None]) & (ign[None, :] < match[:, None])
                )
                pos -= np.count_nonzero(before, axis=1)
            match_rows_parts.append(keep[match])
            match_ranks_parts.append(pos + 1)  # 1-based rank among the valid gallery items
            match_dist_parts.append(md)

    offsets = np.zeros(nq + 1, dtype=np.int64)
    np.cumsum(num_matches, out=offsets[1:])
    valid = num_matches > 0
    ranks = np.concatenate(match_ranks_parts) if match_ranks_parts else empty_i.copy()
    # hits[j]: 1-based index of match j within its query (the number of hits so far).
    hits = (np.arange(len(ranks)) - np.repeat(offsets[:-1], num_matches) + 1).astype(np.float64)
    franks = ranks.astype(np.float64)
    if rule == "mars_official":
        # compute_AP.m: recall step 1/k times the mean of the precision at the previous
        # position (1 before rank 1) and at the hit.
        prev = np.where(ranks > 1, (hits - 1) / np.maximum(franks - 1, 1), 1.0)
        terms = (prev + hits / franks) / 2.0
    else:
        terms = hits / franks
    ap = np.full(nq, np.nan)
    first_rank = np.zeros(nq, dtype=np.int64)
    if len(ranks):
        ap[valid] = np.add.reduceat(terms, offsets[:-1][valid]) / num_matches[valid]
        first_rank[valid] = ranks[offsets[:-1][valid]]

    out: dict[str, Any] = {
        "rule": rule,
        "num_gallery": ng,
        "valid": valid,
        "ap": ap,
        "first_rank": first_rank,
        "num_matches": num_matches,
        "num_valid_gallery": num_valid_gallery,
        "match_offsets": offsets,
        "match_rows": np.concatenate(match_rows_parts) if match_rows_parts else empty_i.copy(),
        "match_ranks": ranks,
        "match_distances": (
            np.concatenate(match_dist_parts).astype(np.float32)
            if match_dist_parts
            else np.zeros(0, dtype=np.float32)
        ),
    }
    if topk > 0:
        out["topk_rows"] = topk_rows
        out["topk_distances"] = topk_dist
    return out


def _topk_row(
    d: np.ndarray,
    s: np.ndarray,
    ign: np.ndarray,
    keep: np.ndarray,
    k: int,
    out_rows: np.ndarray,
    out_dist: np.ndarray,
) -> None:
    """The ``k`` nearest valid items of one row in (distance, column) order, written in place."""
    n = len(d)
    kk = min(k + len(ign), n)
    if kk == 0:
        return
    # Every one of the k nearest valid items is within the kk-th smallest distance: at most
    # len(ign) of the kk nearest are removed ones.
    cand = np.flatnonzero(d <= s[kk - 1])
    if len(ign):
        cand = cand[~np.isin(cand, ign)]
    cand = cand[np.lexsort((cand, d[cand]))][:k]
    out_rows[: len(cand)] = keep[cand]
    out_dist[: len(cand)] = d[cand]


def per_query(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    rule: str = "market1501",
    chunk: int = DEFAULT_CHUNK,
) -> dict[str, Any]:
    """Per-query evaluation: AP, first-true-match rank and where every true match landed.

    Args:
        distmat: ``(Nq, Ng)`` distances (smaller is closer), any float dtype, no NaN.
        q_pids, g_pids, q_camids, g_camids: integer identity and camera labels.
        rule: ``"market1501"`` (torchreid, default) or ``"mars_official"``.
        chunk: query rows per chunk.

    Returns:
        A dict of numpy arrays over the ``Nq`` queries:

        - ``valid`` (bool): the query has at least one true match left after the rule's
          removals; invalid queries are *skipped* by every aggregate.
        - ``ap`` (float64): average precision under the rule; ``NaN`` for skipped queries.
        - ``first_rank`` (int64): 1-based rank of the first true match among the valid gallery
          items; ``0`` for skipped queries.
        - ``num_matches`` (int64) and ``num_valid_gallery`` (int64, gallery items the rule keeps).
        - ``match_offsets`` (int64, ``Nq + 1``) indexing the flat arrays ``match_rows`` (gallery
          columns of the true matches, best first), ``match_ranks`` (their 1-based ranks) and
          ``match_distances`` (float32).
        - ``rule`` and ``num_gallery`` (the number of gallery columns).

    Raises:
        ValueError: inconsistent shapes, an unknown rule, or a NaN distance.
    """
    dm = np.asarray(distmat)
    if dm.ndim != 2:
        raise ValueError(f"distmat must be 2-D, got shape {dm.shape}")
    nq, ng = dm.shape
    _as_ids("q_pids", q_pids, nq)
    _as_ids("g_pids", g_pids, ng)
    return rank_queries(lambda a, b: dm[a:b], q_pids, g_pids, q_camids, g_camids, rule=rule, chunk=chunk)


def summarize(pq: dict[str, Any], max_rank: int = 50) -> tuple[np.ndarray, float]:
    """CMC and mAP from the per-query arrays of ``per_query`` / ``rank_queries``.

    Args:
        pq: per-query results (needs ``valid``, ``first_rank``, ``ap``, ``num_gallery``).
        max_rank: CMC length; like torchreid it is cut to the gallery size when the gallery is
            smaller, so the returned length is ``min(max_rank, num_gallery)``.

    Returns:
        ``(cmc, mAP)``: ``cmc[r]`` (float32) is the fraction of valid queries whose first true
        match is at rank ``r + 1`` or better; ``mAP`` is the mean AP over valid queries.

    Raises:
        ValueError: no query has a true match in the gallery (everything would be skipped).
    """
    valid = np.asarray(pq["valid"], dtype=bool)
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError(
            "no query has a true match in the gallery (all queries skipped); "
            "check the pids/camids of the query and gallery sets"
        )
    max_rank = int(min(max_rank, pq["num_gallery"]))
    first = np.asarray(pq["first_rank"])[valid]
    # Histogram of first-hit ranks, cumulated: the count of queries with a hit at rank <= r.
    hist = np.bincount(np.minimum(first, max_rank + 1), minlength=max_rank + 2)[1 : max_rank + 1]
    # float32 count / count: the same float32 numbers torchreid's all_cmc.sum(0) / num_valid_q gives.
    cmc = np.cumsum(hist).astype(np.float32) / np.float32(num_valid)
    mAP = float(np.mean(np.asarray(pq["ap"], dtype=np.float64)[valid]))
    return cmc.astype(np.float32), mAP


def evaluate_rank(
    distmat: Any,
    q_pids: Any,
    g_pids: Any,
    q_camids: Any,
    g_camids: Any,
    max_rank: int = 50,
    rule: str = "market1501",
) -> tuple[np.ndarray, float]:
    """CMC and mAP of a distance matrix, with torchreid's ``evaluate_rank`` semantics.

    Args:
        distmat: ``(Nq, Ng)`` distances (smaller is closer). torchreid's "euclidean" is the
            squared distance; the plain Euclidean distance ranks identically.
        q_pids, g_pids, q_camids, g_camids: integer identity and camera labels.
        max_rank: CMC length, cut to ``Ng`` when the gallery is smaller (as torchreid does).
        rule: ``"market1501"`` (torchreid) or ``"mars_official"`` (MARS MATLAB code).

    Returns:
        ``(cmc, mAP)``: float32 array of length ``min(max_rank, Ng)`` and a float. Queries with
        no true match left are skipped (see ``per_query``); ties are broken by gallery column.

    Raises:
        ValueError: inconsistent inputs, NaN distances, or every query skipped.
    """
    return summarize(per_query(distmat, q_pids, g_pids, q_camids, g_camids, rule=rule), max_rank)


def cmc_summary(cmc: Any) -> dict[str, float]:
    """Rank-1/5/10/20 of a CMC curve as fractions.

    A rank beyond the curve's length takes its last value (with a gallery of n items every
    valid query has its first match within rank n).
    """
    cmc = np.asarray(cmc, dtype=np.float64)
    if cmc.size == 0:
        raise ValueError("empty CMC curve")
    return {f"rank{r}": float(cmc[min(r, len(cmc)) - 1]) for r in (1, 5, 10, 20)}
