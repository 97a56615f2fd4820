"""Siamese pair sampling as RCN's training loop does it (SPEC §c.2).

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
            others = [it for it in items if it[1] != first[1]] or [it for it in items if it != first] or items
            second = others[rng.integers(len(others))]
            return Pair(first[0], second[0], person, person, True)
        p, q = rng.choice(self.num_ids, size=2, replace=False)
        a = self.by_id[int(p)][rng.integers(len(self.by_id[int(p)]))]
        b = self.by_id[int(q)][rng.integers(len(self.by_id[int(q)]))]
        return Pair(a[0], b[0], int(p), int(q), False)
