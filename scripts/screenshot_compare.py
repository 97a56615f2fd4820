"""Screenshot of compare mode (issue 18): the demo, the shipped RAN (K = 3) against a mean-pooling model.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshot_compare.py \
        [--workspace DIR] [--b CHECKPOINT] --out docs/images/compare.png

Without ``--b`` a mean-pooling checkpoint with seeded *random* weights is written into the
workspace (``mean-pool-random.safetensors``) and used as model B: a stand-in baseline that
costs no training. The window opens the SynthWalk demo with the shipped checkpoint (A), compares
with B, sorts the query list by "fixed by B" ... here, with a random B, "broken by B" is the
interesting sort, so ``--sort`` chooses (default ``broken``), selects a query and saves the window.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def mean_pool_checkpoint(folder: Path) -> Path:
    import torch

    from reidviewer.model.checkpoint import save_checkpoint
    from reidviewer.model.config import ModelConfig
    from reidviewer.model.network import build_model

    path = folder / "mean-pool-random.safetensors"
    if not path.is_file():
        torch.manual_seed(0)
        config = ModelConfig(head="mean", num_classes=75)
        folder.mkdir(parents=True, exist_ok=True)
        save_checkpoint(path, build_model(config), config, {"note": "random weights: a stand-in baseline"})
    return path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", default=None)
    ap.add_argument("--b", default=None, help="model B's checkpoint (default: random-weight mean pooling)")
    ap.add_argument("--sort", default="broken", choices=("fixed", "broken", "delta"))
    ap.add_argument("--query", type=int, default=0, help="position in the sorted list")
    ap.add_argument("--out", default="docs/images/compare.png")
    args = ap.parse_args()

    from reidviewer.app.viewmodel import OpenRequest
    from reidviewer.workspace import Workspace

    ws = Workspace(args.workspace)
    b = Path(args.b) if args.b else mean_pool_checkpoint(ws.root / "checkpoints")
    from _window import open_window

    opened = open_window(ws, OpenRequest())
    if opened is None:
        return 1
    _app, w, settle = opened

    w.compare_with(b)
    while w.state.comparison is None and w.job is not None:
        settle(500)
    if w.state.comparison is None:
        print("comparison failed:", w.status_text.text(), file=sys.stderr)
        return 1
    w.queries.sort_by(args.sort)
    w.queries.select_position(args.query)
    w.tabs.setCurrentWidget(w.metrics)
    settle(1500)
    w.probe.set_frame(min(12, w.probe.length - 1))
    w.gallery.set_frame(min(7, w.gallery.length - 1))
    settle(1000)
    from _window import save_window

    out = Path(args.out)
    save_window(w, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
