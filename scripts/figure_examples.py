"""Render the README's example figures (``resources/figures/{ranking,failures,attention,cmc}.png``).

A small SynthWalk set is generated into a temporary folder. With ``--checkpoint`` every figure
comes from that checkpoint's evaluation (``compute_results``, as ``reidviewer export`` does).
Without one, ranking, failure and CMC figures come from seeded *random features* (each identity a
random centre plus noise, so rankings are partly right; the CMC overlays three noise levels,
labelled as such, on 150 feature-only identities), and the attention strip from a real RAN (K = 3) with seeded *random weights*
(near-uniform attention, drawn stretched) — illustrations of the figure layouts, not results.

Usage::

    python scripts/figure_examples.py [OUT_DIR] [--checkpoint FILE] [--ids 16] [--dpi 110]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reidviewer.data.registry import open_dataset  # noqa: E402
from reidviewer.data.synthwalk import SynthConfig, generate  # noqa: E402
from reidviewer.engine.results import Results, build_results  # noqa: E402
from reidviewer.figures import FigureOptions, export_figure  # noqa: E402
from reidviewer.workspace import Workspace  # noqa: E402


def random_feature_results(dataset, noise: float, seed: int, dim: int = 32) -> Results:
    """Split-0 results from seeded random features: identity centre + Gaussian noise."""
    rng = np.random.default_rng(seed)
    sp = dataset.split(0)
    tr = dataset.tracklets
    centre = {p: rng.normal(size=dim) for p in sorted({t.pid for t in tr})}
    rows = np.concatenate([sp.query, sp.gallery])
    feats = {int(i): centre[tr[i].pid] + noise * rng.normal(size=dim) for i in rows}
    return build_results(
        [feats[int(i)] for i in sp.query], [feats[int(i)] for i in sp.gallery],
        [tr[i].pid for i in sp.query], [tr[i].pid for i in sp.gallery],
        [tr[i].camid for i in sp.query], [tr[i].camid for i in sp.gallery],
        query_indices=sp.query, gallery_indices=sp.gallery,
        query_keys=[tr[i].key for i in sp.query], gallery_keys=[tr[i].key for i in sp.gallery],
        dataset_name=dataset.name, dataset_root=dataset.root, dataset_fingerprint=dataset.fingerprint,
        protocol=dataset.protocol, split=0,
    )


def random_feature_curve(noise: float, seed: int, ids: int = 150, dim: int = 64) -> Results:
    """Results of ``ids`` identities seen once per camera, from random features alone (for a CMC)."""
    rng = np.random.default_rng(seed)
    centre = rng.normal(size=(ids, dim))
    pids = np.arange(ids)
    return build_results(centre + noise * rng.normal(size=centre.shape), centre + noise * rng.normal(size=centre.shape),
                         pids, pids, np.zeros(ids), np.ones(ids))


def random_checkpoint(path: Path) -> Path:
    """A real RAN (K = 3) checkpoint with seeded random weights."""
    import torch

    from reidviewer.model.checkpoint import save_checkpoint
    from reidviewer.model.config import ModelConfig
    from reidviewer.model.network import build_model

    torch.manual_seed(0)
    config = ModelConfig(head="ran", iterations=3, num_classes=6)
    save_checkpoint(path, build_model(config), config, {"note": "random weights (figure examples)"})
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", nargs="?", default=str(Path(__file__).resolve().parents[1] / "resources" / "figures"))
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--ids", type=int, default=16)
    parser.add_argument("--dpi", type=int, default=110)
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from reidviewer.engine.evaluate import compute_results

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ws = Workspace(tmp / "ws")
        root = generate(tmp / "synthwalk", SynthConfig(ids=args.ids, seed=0), workers=1)
        dataset = open_dataset(root, "synthwalk", None, ws)
        if args.checkpoint:
            results = compute_results(dataset, 0, args.checkpoint, ws)
            curves, labels = [results], ()
            att_results, scale = results, "fixed"
        else:
            results = random_feature_results(dataset, 1.2, 1)
            curves = [random_feature_curve(n, s) for n, s in ((1.1, 3), (1.3, 0), (1.6, 1))]
            labels = ("random features, noise 1.1", "noise 1.3", "noise 1.6")
            att_results = compute_results(dataset, 0, random_checkpoint(tmp / "random-ran.safetensors"), ws)
            scale = "stretch"
        opts = FigureOptions(size="single", dpi=args.dpi)
        # The attention example shows the query with the most occluded frames, so the strips can
        # be read against the recorded occlusion row under them.
        occluded = [int((np.asarray(dataset.occlusion.get(dataset.tracklets[int(i)].key, [])) > 0.3).sum())
                    for i in att_results.query_indices] if dataset.occlusion else [0]
        att_query = (int(np.argmax(occluded)),) if max(occluded) > 0 else ()
        written = [
            export_figure("ranking", dataset, results, out / "ranking.png", opts.replace(count=3, top_k=4, dpi=args.dpi - 15)),
            export_figure("failures", dataset, results, out / "failures.png", opts.replace(count=3)),
            export_figure("attention", dataset, att_results, out / "attention.png",
                          opts.replace(compare="top1", attention_scale=scale, dpi=args.dpi + 30,
                                       queries=att_query)),
            export_figure("cmc", None, curves, out / "cmc.png", opts.replace(labels=labels, dpi=args.dpi + 40)),
        ]
    for path in written:
        print(f"{path}  {path.stat().st_size / 1024:.0f} KB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
