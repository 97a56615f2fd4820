"""Siamese pair sampling as RCN's training loop does it (docs/method.md §5.2).

Per epoch: a random permutation of the training persons, then 2·N iterations. Even
iterations are **positive** pairs (person ``order[i // 2]``, a tracklet from one camera
against one from another camera); odd iterations are **negative** pairs (two distinct
random persons, each with a random tracklet, so possibly the same camera). Positives and
negatives are therefore equal in number.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from reidviewer.data.tracklet import UNKNOWN_CAMERA


@dataclass(frozen=True)
class Pair:
    """One training pair: two tracklet indices, their training labels, and same/different."""

    a: int
    b: int
    label_a: int
    label_b: int
    same: bool


class PairSampler:
    """Draws the RCN/RAN pair sequence for one training split.

    Args:
        tracklet_indices: training tracklet indices (into the dataset).
        labels: training label (0..N-1) of each of those tracklets.
        camids: camera id of each of those tracklets.
    """

    def __init__(self, tracklet_indices: np.ndarray, labels: np.ndarray, camids: np.ndarray) -> None:
        if len(tracklet_indices) == 0:
            raise ValueError("the training split has no tracklets")
        self.num_ids = int(labels.max()) + 1
        if self.num_ids < 2:
            raise ValueError("training needs at least two identities (negative pairs need two persons)")
        by_id: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for t, lab, cam in zip(tracklet_indices, labels, camids):
            by_id[int(lab)].append((int(t), int(cam)))
        self.by_id = [by_id[i] for i in range(self.num_ids)]

    @property
    def pairs_per_epoch(self) -> int:
        """2·N: one positive and one negative pair per training person."""
        return 2 * self.num_ids

    def epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        """The permutation of training persons that an epoch walks through."""
        return rng.permutation(self.num_ids)

    def pair(self, order: np.ndarray, i: int, rng: np.random.Generator) -> Pair:
        """The i-th pair of the epoch whose person order is ``order``."""
        if i % 2 == 0:
            person = int(order[i // 2])
            items = self.by_id[person]
            first = items[rng.integers(len(items))]
            # Prefer a tracklet from another camera; an id seen by one camera pairs with itself.
            # (An unknown camera may be any camera, so it counts as another one.)
            others = ([it for it in items if it != first and (it[1] != first[1] or it[1] == UNKNOWN_CAMERA)]
                      or [it for it in items if it != first] or items)
            second = others[rng.integers(len(others))]
            return Pair(first[0], second[0], person, person, True)
        p, q = rng.choice(self.num_ids, size=2, replace=False)
        a = self.by_id[int(p)][rng.integers(len(self.by_id[int(p)]))]
        b = self.by_id[int(q)][rng.integers(len(self.by_id[int(q)]))]
        return Pair(a[0], b[0], int(p), int(q), False)




class IdentitySampler:
    """Identity-balanced batches for the ``fast`` recipe: P identities × K tracklets each.

    Each epoch walks through the identities in a random order, P at a time (a new order when
    one runs out), for ``steps_per_epoch`` batches: about one pass over the training tracklets.
    For each identity it takes K of its tracklets, spread over as many cameras as it has (a
    different camera each, round-robin, so the batch holds cross-camera positives); an identity
    with fewer than K tracklets has some drawn twice. Unknown cameras (``UNKNOWN_CAMERA``)
    count as cameras of their own.

    Args:
        tracklet_indices: training tracklet indices (into the dataset).
        labels: training label (0..N-1) of each of those tracklets.
        camids: camera id of each of those tracklets.
        ids_per_batch: P (capped at the number of identities).
        tracklets_per_id: K.
    """

    def __init__(self, tracklet_indices: np.ndarray, labels: np.ndarray, camids: np.ndarray,
                 ids_per_batch: int = 16, tracklets_per_id: int = 4) -> None:
        if len(tracklet_indices) == 0:
            raise ValueError("the training split has no tracklets")
        self.num_ids = int(np.max(labels)) + 1
        if self.num_ids < 2:
            raise ValueError("training needs at least two identities (a triplet needs a negative)")
        self.p = min(int(ids_per_batch), self.num_ids)
        self.k = int(tracklets_per_id)
        by_id: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for j, (t, lab, cam) in enumerate(zip(tracklet_indices, labels, camids)):
            # An unknown camera is a camera of its own: never "the same camera" as another.
            cam_key = int(cam) if int(cam) != UNKNOWN_CAMERA else -(j + 2)
            by_id[int(lab)].append((int(t), cam_key))
        self.by_id = [by_id[i] for i in range(self.num_ids)]
        self.steps_per_epoch = max(1, -(-len(tracklet_indices) // (self.p * self.k)))

    def tracklets_for(self, label: int, rng: np.random.Generator) -> list[int]:
        """K tracklets of one identity: a different camera each while cameras last."""
        items = self.by_id[label]
        order = rng.permutation(len(items))
        by_cam: dict[int, list[int]] = defaultdict(list)
        for j in order:
            by_cam[items[j][1]].append(items[j][0])
        cams = list(by_cam)
        picked: list[int] = []
        depth = 0
        while len(picked) < min(self.k, len(items)):  # round-robin over the cameras
            for cam in cams:
                if depth < len(by_cam[cam]) and len(picked) < self.k:
                    picked.append(by_cam[cam][depth])
            depth += 1
        if len(picked) < self.k:  # too few tracklets: draw again, with replacement
            extra = rng.integers(len(items), size=self.k - len(picked))
            picked += [items[int(j)][0] for j in extra]
        return picked

    def epoch(self, rng: np.random.Generator) -> list[list[tuple[int, int]]]:
        """The batches of one epoch: each a list of (tracklet index, label), K per identity."""
        batches: list[list[tuple[int, int]]] = []
        queue: list[int] = []
        while len(batches) < self.steps_per_epoch:
            if len(queue) < self.p:
                queue += [int(i) for i in rng.permutation(self.num_ids) if int(i) not in queue[:self.p]]
            ids, queue = queue[:self.p], queue[self.p:]
            batches.append([(t, lab) for lab in ids for t in self.tracklets_for(lab, rng)])
        return batches
