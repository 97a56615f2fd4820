"""Screenshot of the Map tab (issue 21) on the demo: the whole set coloured by camera, the current
query starred with its true matches ringed, a lasso selection in the list, and find-similar in
the ranked view.

    xvfb-run -a -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshot_map.py \
        [--workspace DIR] [--color-by camera] [--method pca] --out docs/images/map.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", default=None)
    ap.add_argument("--color-by", default="identity")
    ap.add_argument("--method", default="pca", choices=("pca", "umap"))
    ap.add_argument("--query", type=int, default=3, help="position in the query list")
    ap.add_argument("--similar", action="store_true", help="also show find-similar in the ranked view")
    ap.add_argument("--training", action="store_true", help="also put the training tracklets on the map")
    ap.add_argument("--out", default="docs/images/map.png")
    args = ap.parse_args()

    import numpy as np
    from PySide6.QtCore import Qt

    from reidviewer.app.viewmodel import OpenRequest
    from reidviewer.workspace import Workspace

    sys.path.insert(0, str(Path(__file__).parent))
    from _window import open_window

    opened = open_window(Workspace(args.workspace), OpenRequest())
    if opened is None:
        return 1
    _app, w, settle = opened
    mv = w.map_view
    w.resizeDocks([w.queries_dock, w.analysis_dock], [250, 470], Qt.Orientation.Horizontal)  # room for the map
    w.queries.select_position(args.query)
    settle(800)
    w.tabs.setCurrentWidget(mv)
    mv.color_box.setCurrentIndex(mv.color_box.findData(args.color_by))
    mv.set_method(args.method)
    if args.training:
        mv.training_box.setChecked(True)
    while mv.job is not None or mv.training_job is not None:
        settle(500)
    settle(600)
    # A lasso around the current query's neighbourhood.
    m = mv.map
    q = m.ms.point_of_query(w.state.query)
    c = mv.coords
    span = c.max(0) - c.min(0)
    r = 0.12 * span
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    poly = np.stack([c[q, 0] + r[0] * np.cos(t), c[q, 1] + r[1] * np.sin(t)], 1)
    mv.lasso_start(tuple(poly[0]))
    for p in poly[1:]:
        mv.lasso_add(tuple(p))
    mv.lasso_finish()
    if args.similar:
        w.find_similar(query_row=w.state.query)
    settle(1200)
    mv.set_hover(int(mv.selected[1]) if len(mv.selected) > 1 else q)
    settle(600)
    from _window import save_window

    out = Path(args.out)
    save_window(w, out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
