"""Take screenshots of the real main window (run under ``xvfb-run`` for a real X display).

    xvfb-run -s "-screen 0 1280x800x24" .venv/bin/python scripts/screenshot.py \
        --root DATA --checkpoint FILE --out resources/screenshots

Writes ``main.png`` (a query with its ranked list) and ``failures.png`` (the Failures tab),
plus ``metrics.png``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=None)
    ap.add_argument("--dataset", default="auto")
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--workspace", default=None)
    ap.add_argument("--out", default="resources/screenshots")
    ap.add_argument("--query", type=int, default=4, help="position in the AP-sorted list")
    ap.add_argument("--frame", type=int, default=15, help="probe frame to show (the gallery shows frame 7)")
    args = ap.parse_args()

    from reidviewer.app.viewmodel import OpenRequest
    from reidviewer.workspace import Workspace

    from _window import open_window

    req = OpenRequest(root=Path(args.root) if args.root else None, name=args.dataset,
                      checkpoint=Path(args.checkpoint) if args.checkpoint else None)
    opened = open_window(Workspace(args.workspace), req, 600_000)
    if opened is None:
        return 1
    _app, w, settle = opened

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    w.queries.sort_by("ap")
    w.queries.select_position(args.query)
    settle(1500)
    w.probe.set_frame(min(args.frame, w.probe.length - 1))
    w.gallery.set_frame(min(7, w.gallery.length - 1))
    settle(800)
    w.grab().save(str(out / "main.png"))
    w.tabs.setCurrentWidget(w.failures)
    settle(1200)
    w.grab().save(str(out / "failures.png"))
    w.tabs.setCurrentWidget(w.metrics)
    settle(600)
    w.grab().save(str(out / "metrics.png"))
    print(f"wrote {out}/main.png, failures.png, metrics.png")
    w.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
