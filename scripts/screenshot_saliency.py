"""Screenshot of the saliency overlay (issue 20) on an occluded SynthWalk query.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshot_saliency.py \
        [--workspace DIR] [--checkpoint FILE] --out docs/images/saliency.png

Opens the SynthWalk demo with the shipped checkpoint, picks the query whose probe is most
occluded (SynthWalk's recorded ratio; ``--query`` picks the n-th most occluded), shows the probe
at its most occluded frame and the gallery at the frame of the top-1 the same number of frames
in, turns the overlay on (S) and waits for the maps, then saves the window.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", default=None)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--query", type=int, default=0, help="n-th most occluded query (0: the most)")
    ap.add_argument("--opacity", type=int, default=70)
    ap.add_argument("--per-frame", action=argparse.BooleanOptionalAction, default=True,
                    help="stretch each frame's map to its maximum (default on)")
    ap.add_argument("--out", default="docs/images/saliency.png")
    args = ap.parse_args()

    from reidviewer.app.viewmodel import OpenRequest
    from reidviewer.workspace import Workspace

    from _window import open_window

    opened = open_window(Workspace(args.workspace),
                         OpenRequest(checkpoint=Path(args.checkpoint) if args.checkpoint else None))
    if opened is None:
        return 1
    _app, w, settle = opened
    ds, res = w.session.dataset, w.session.results
    occ = ds.occlusion or {}
    # Occluded, but not hidden: the most frames with 15–45 % of the person covered, among the
    # queries whose top-1 is right (the overlay then explains a true match).
    score = []
    for row, idx in enumerate(res.query_indices):
        r = np.asarray(occ.get(ds.tracklets[int(idx)].key, [0.0]))
        score.append(int(((r > 0.15) & (r < 0.45)).sum()) * int(res.first_rank[row] == 1))
    order = np.argsort(-np.asarray(score), kind="stable")
    row = int(order[min(args.query, len(order) - 1)])
    key = ds.tracklets[int(res.query_indices[row])].key
    ratios = np.asarray(occ.get(key, [0.0]))
    # The occluded frame (15–45 %) the final iteration attends to most.
    att = res.attention(int(res.query_indices[row]))[-1]
    ok = (ratios[:len(att)] > 0.15) & (ratios[:len(att)] < 0.45)
    frame = int(np.argmax(np.where(ok, att[:len(ratios)], -1))) if ok.any() else int(np.argmax(ratios))
    w.queries.select_row(row)
    settle(1500)
    w.saliency.opacity.setValue(args.opacity)
    w.saliency.per_frame.setChecked(args.per_frame)
    w.viewer_split.setSizes([680, 120])  # room for the players; the ranked list stays in view
    w.saliency.set_enabled(True)
    for _ in range(240):
        if w.saliency.maps:
            break
        settle(250)
    if not w.saliency.maps:
        print("no saliency maps:", w.saliency.status.text(), w.saliency.status.toolTip(), file=sys.stderr)
        return 1
    w.probe.set_frame(min(frame, w.probe.length - 1))
    w.gallery.set_frame(min(frame, w.gallery.length - 1))
    settle(1500)
    from _window import save_window

    out = Path(args.out)
    save_window(w, out)
    print(f"wrote {out}: query row {row} ({key}), probe frame {frame + 1}, occlusion {ratios[frame]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
