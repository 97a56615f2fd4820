"""Is there anything for attention to learn? Occlusion diagnostics of a checkpoint on SynthWalk.

    .venv/bin/python scripts/attention_diagnostics.py CHECKPOINT --root SYNTHWALK [--workspace WS]

Embeds the frames (up to 128 per tracklet, as evaluation does) of the split's tracklets with the checkpoint's frame network and prints:

1. **Oracle pooling**: rank-1 / mAP when each tracklet is mean-pooled over all its frames,
   over its clear frames only (occlusion ≤ 0.3, the truth SynthWalk records), and over its
   occluded frames only — on the held-out identities *and* on the training identities.
   The gap between "all" and "clear" is what a perfect occlusion-avoiding attention could
   gain; on the training identities it is the incentive the training loss gives attention.
2. **Training incentive**: the positive-pair loss ½‖f_a − f_b‖² of eq. 5 on random 16-frame
   clips (as training draws them) of the same person in both cameras, mean-pooled over all
   frames and over clear frames only, for pairs where a clip mixes clear and occluded frames.
   If clear-only pooling does not lower the loss on the training identities, the loss gives
   attention no reason to avoid occluded frames, whatever it would gain on new identities.
3. **Linear probe**: AUROC of a logistic regression from frame features to "occluded"
   (fitted on training frames, scored on held-out frames): whether the features carry the
   information θ would need.
4. **The model's attention**: its AUROC against the same flags (``reidviewer audit``).
"""
from __future__ import annotations

import argparse
from functools import lru_cache

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--root", required=True, help="a SynthWalk set")
    ap.add_argument("--workspace", default=None)
    ap.add_argument("--split", type=int, default=0)
    ap.add_argument("--threshold", type=float, default=0.3)
    args = ap.parse_args()

    import torch

    from reidviewer.engine.audit import mann_whitney_auroc
    from reidviewer.data.cache import FrameCache
    from reidviewer.data.registry import open_dataset
    from reidviewer.data.transforms import test_transform
    from reidviewer.engine.evaluate import compute_results, occlusion_audit, preprocess_config_of
    from reidviewer.engine.metrics import evaluate_rank
    from reidviewer.model.checkpoint import load_checkpoint
    from reidviewer.model.inference import embed_frames
    from reidviewer.workspace import Workspace

    ws = Workspace(args.workspace)  # None: the default workspace
    ds = open_dataset(args.root, workspace=ws)
    if not ds.occlusion:
        raise SystemExit(f"{args.root}: records no occlusion (not a SynthWalk set)")
    model, _, meta = load_checkpoint(args.checkpoint)
    cache = FrameCache(ws, ds, preprocess_config_of(meta))  # the checkpoint's own (e.g. no flow)
    split = ds.split(args.split)

    @lru_cache(maxsize=None)  # each section reuses the same tracklets' frame features
    def frames_of(i: int) -> tuple[np.ndarray, np.ndarray]:
        occ = np.asarray(ds.occlusion[ds.tracklets[i].key])
        n = min(len(occ), 128)
        x = torch.from_numpy(np.array(test_transform(cache.network_input(i, slice(0, n))), dtype=np.float32))
        return embed_frames(model, x).numpy(), occ[:n] > args.threshold

    def auroc(score: np.ndarray, flag: np.ndarray) -> float:
        return float(np.asarray(mann_whitney_auroc(score[None, :], flag))[0])

    def oracle(query: list[int], gallery: list[int], label: str) -> None:
        q = [frames_of(i) for i in query]
        g = [frames_of(i) for i in gallery]
        ids = lambda ix: np.array([ds.tracklets[i].pid for i in ix])  # noqa: E731
        cams = lambda ix: np.array([ds.tracklets[i].camid for i in ix])  # noqa: E731
        for name, keep in (("all frames", lambda f: np.ones_like(f)), ("clear frames", lambda f: ~f),
                           ("occluded frames", lambda f: f)):
            def pool(x: np.ndarray, f: np.ndarray) -> np.ndarray:
                k = keep(f)
                return x[k].mean(0) if k.any() else x.mean(0)

            qf = np.stack([pool(*t) for t in q])
            gf = np.stack([pool(*t) for t in g])
            d = np.sqrt(((qf[:, None] - gf[None]) ** 2).sum(-1))
            cmc, m_ap = evaluate_rank(d, ids(query), ids(gallery), cams(query), cams(gallery), max_rank=1)
            print(f"  {label:24s} mean over {name:16s} R1 {100 * cmc[0]:5.1f} %  mAP {100 * m_ap:5.1f} %")

    train = [int(i) for i in split.train]
    first_cam = ds.tracklets[train[0]].camid
    print("1. oracle pooling (frame features of the checkpoint, mean-pooled)")
    oracle([int(i) for i in split.query], [int(i) for i in split.gallery], "held-out identities")
    oracle([i for i in train if ds.tracklets[i].camid == first_cam],
           [i for i in train if ds.tracklets[i].camid != first_cam], "training identities")

    def incentive(tracklets: list[int], label: str, pairs: int = 3000) -> None:
        rng = np.random.default_rng(0)
        by_person: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}
        for i in tracklets:
            by_person.setdefault(ds.tracklets[i].pid, []).append(frames_of(i))
        people = [p for p, t in by_person.items() if len(t) >= 2]
        loss = {"all frames": [], "clear frames": []}
        for _ in range(pairs):
            a, b = by_person[people[rng.integers(len(people))]][:2]
            clips = []
            for x, f in (a, b):
                s = int(rng.integers(0, max(1, len(x) - 15)))
                clips.append((x[s:s + 16], f[s:s + 16]))
            if not any(f.any() and (~f).any() for _, f in clips):
                continue
            for name in loss:
                fa, fb = (x[~f].mean(0) if name == "clear frames" and (~f).any() else x.mean(0) for x, f in clips)
                loss[name].append(0.5 * float(((fa - fb) ** 2).sum()))
        print(f"  {label:24s} " + "  ".join(f"{k}: {np.mean(v):.3f}" for k, v in loss.items())
              + f"  ({len(loss['all frames'])} pairs with a mixed clip)")

    print("2. training incentive: positive-pair loss on 16-frame clips, mean-pooled over")
    incentive([int(i) for i in np.concatenate([split.query, split.gallery])], "held-out identities")
    incentive(train, "training identities")

    print("3. linear probe frame feature -> occluded")
    xs, ys = zip(*(frames_of(i) for i in train))
    x, y = torch.tensor(np.concatenate(xs)), torch.tensor(np.concatenate(ys), dtype=torch.float32)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    w = torch.zeros(x.shape[1], requires_grad=True)
    b = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=500)

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits((x - mu) / sd @ w + b, y) + 1e-3 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    held = [frames_of(int(i)) for i in np.concatenate([split.query, split.gallery])]
    hx = torch.tensor(np.concatenate([h[0] for h in held]))
    hy = np.concatenate([h[1] for h in held])
    print(f"  AUROC on held-out frames: {auroc(((hx - mu) / sd @ w).detach().numpy(), hy):.3f}")

    print("4. the model's attention (AUROC of low attention, per iteration)")
    audit = occlusion_audit(ds, compute_results(ds, args.split, args.checkpoint, ws), args.threshold)
    print("  pooled over frames:   " + ", ".join(f"{a:.3f}" for a in audit.auroc))
    print("  mean within tracklet: " + ", ".join(f"{a:.3f}" for a in audit.mean_tracklet_auroc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
