"""Validation during training: R1 and mAP of the split's queries, at any scale.

Features are extracted a few hundred tracklets at a time and only the (N, D) features are
kept; distances are computed one chunk of query rows at a time by the same ranking routine as
evaluation (``rank_queries``), so memory stays at a few chunk-sized arrays — at MARS size
(1,980 × 9,330) tens of megabytes instead of the 9.5 GB a broadcast (Q, G, D) array takes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reidviewer.data.dataset import Split, VideoDataset
from reidviewer.memory import release_free_memory

#: Tracklets embedded per batch during validation: 128 × 16 frames keeps a batch's input and
#: activations near 250 MB (256 peaked at 460 MB on MARS).
BATCH_TRACKLETS = 128


@dataclass
class Validation:
    """Validation numbers: rank-1, mAP, and the median within-tracklet attention spread."""

    rank1: float
    mAP: float  # noqa: N815 - the metric's usual name
    attention_spread: float | None


def split_features(model, dataset: VideoDataset, indices: np.ndarray, cache, *, max_frames: int, use_flow: bool,
                   should_stop=None) -> tuple[np.ndarray, list[float]]:
    """Features (N, D) of tracklets ``indices`` from their first ``max_frames`` frames (centre
    crop), and each tracklet's final-attention spread (standard deviation over its frames).
    """
    from dataclasses import replace

    from reidviewer.model.inference import extract_features

    # Flow off gives zero flow channels, as training feeds them (data.network_batch).
    preprocess = replace(cache.config, use_flow=use_flow)
    feats = np.empty((len(indices), model.config.embedding_dim), dtype=np.float32)
    spreads: list[float] = []
    for a in range(0, len(indices), BATCH_TRACKLETS):
        clips = []
        for i in indices[a:a + BATCH_TRACKLETS]:
            n = len(dataset.tracklets[int(i)])
            clips.append(cache.read(int(i), slice(0, min(n, max_frames))))  # stored uint8
        out = extract_features(model, clips, stored=True, preprocess=preprocess)
        feats[a:a + len(clips)] = out.features.numpy()
        spreads += [float(att[-1].std(unbiased=False)) if att.shape[1] > 1 else 0.0 for att in out.attention]
        del clips, out
        release_free_memory()  # else fragmented arenas keep ~1 GB at MARS size
    return feats, spreads


def validate(model, dataset: VideoDataset, split: Split, cache, *, max_frames: int = 16, use_flow: bool = True,
             has_attention: bool = False) -> Validation:
    """R1 and mAP of ``split``'s queries against its gallery (the dataset's evaluation rule)."""
    from reidviewer.engine.metrics import rank_queries, summarize
    from reidviewer.engine.results import euclidean_rows

    was_training = model.training
    model.eval()
    try:
        idx = np.unique(np.concatenate([split.query, split.gallery])).astype(np.int64)
        feats, spreads = split_features(model, dataset, idx, cache, max_frames=max_frames, use_flow=use_flow)
    finally:
        model.train(was_training)
    row = np.searchsorted(idx, split.query), np.searchsorted(idx, split.gallery)
    qf, gf = feats[row[0]], feats[row[1]]
    tr = dataset.tracklets
    pq = rank_queries(lambda a, b: euclidean_rows(qf, gf, a, b),
                      [tr[i].pid for i in split.query], [tr[i].pid for i in split.gallery],
                      [tr[i].camid for i in split.query], [tr[i].camid for i in split.gallery],
                      rule=dataset.eval_rule)
    if not pq["valid"].any():
        return Validation(0.0, 0.0, None)
    cmc, mAP = summarize(pq, max_rank=1)
    return Validation(float(cmc[0]), float(mAP), float(np.median(spreads)) if has_attention and spreads else None)
