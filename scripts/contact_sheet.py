"""Render a SynthWalk contact sheet: a few identities, both cameras, a strip of frames each.

Each row is one tracklet (``person007 cam1``): ``--frames`` frames, ``--step`` apart, so the
gait is visible. When a tracklet has an occlusion event the strip is centred on its most
occluded frame. The occlusion ratio is printed under every frame; occluded frames get a red
border.

Usage::

    python scripts/contact_sheet.py OUT.png [--ids 4] [--seed 0] [--frames 8] [--step 2]
        [--scale 1] [--palette]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reidviewer.data.synthwalk import SynthConfig, describe_identity, render_tracklet  # noqa: E402


def pick_ids(config: SynthConfig, count: int) -> list[int]:
    """The first ``count`` persons, taking about half with an occluded tracklet."""
    occluded, clear = [], []
    for pid in range(1, config.ids + 1):
        hit = any(render_tracklet(config, pid, cam).occlusion.max() > 0.2 for cam in (1, 2))
        (occluded if hit else clear).append(pid)
        if len(occluded) >= count // 2 + count % 2 and len(clear) >= count // 2:
            break
    chosen = occluded[: count // 2 + count % 2] + clear[: count // 2]
    return sorted(chosen)[:count]


def strip_window(occ: np.ndarray, frames: int, step: int) -> range:
    """Frame indices to show: centred on the most occluded frame if there is one."""
    n = len(occ)
    span = (frames - 1) * step + 1
    if n <= span:
        return range(0, n, max(1, step))
    start = 0
    if occ.max() > 0:
        start = int(np.clip(int(np.argmax(occ)) - span // 2, 0, n - span))
    return range(start, start + span, step)


def render_sheet(config: SynthConfig, ids: list[int], frames: int, step: int, scale: int) -> np.ndarray:
    """The contact sheet as an RGB uint8 image."""
    h, w = config.height * scale, config.width * scale
    label_w, gap, text_h = 150, 4, 16
    cell_w, cell_h = w + gap, h + text_h + gap
    rows = [(pid, cam) for pid in ids for cam in (1, 2)]
    sheet = np.full((len(rows) * cell_h + 8, label_w + frames * cell_w + 4, 3), 245, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for r, (pid, cam) in enumerate(rows):
        tr = render_tracklet(config, pid, cam)
        y0 = 4 + r * cell_h
        cv2.putText(sheet, f"person{pid:03d} cam{cam}", (6, y0 + 18), font, 0.45, (20, 20, 20), 1, cv2.LINE_AA)
        cv2.putText(sheet, f"{len(tr.frames)} frames", (6, y0 + 36), font, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
        if cam == 1:
            desc = describe_identity(config, pid)
            words = [f"{desc['top']} {desc['pattern']}", f"{desc['lower_colour']} {desc['lower']}",
                     " ".join(k for k in ("backpack", "bag", "hat") if k in desc)]
            for i, text in enumerate(x for x in words if x):
                cv2.putText(sheet, text, (6, y0 + 56 + 16 * i), font, 0.36, (60, 60, 120), 1, cv2.LINE_AA)
        if tr.occluders:
            kinds = ", ".join(sorted({o["kind"] for o in tr.occluders}))
            cv2.putText(sheet, kinds, (6, y0 + h - 6), font, 0.36, (170, 30, 30), 1, cv2.LINE_AA)
        for c, t in enumerate(strip_window(tr.occlusion, frames, step)):
            x0 = label_w + c * cell_w
            frame = tr.frames[t]
            if scale > 1:
                frame = cv2.resize(frame, (w, h), interpolation=cv2.INTER_NEAREST)
            sheet[y0:y0 + h, x0:x0 + w] = frame
            ratio = float(tr.occlusion[t])
            if ratio > 0:
                cv2.rectangle(sheet, (x0 - 1, y0 - 1), (x0 + w, y0 + h), (220, 30, 30), 2)
            colour = (200, 20, 20) if ratio > 0 else (110, 110, 110)
            shown = "<0.01" if 0 < ratio < 0.005 else f"{ratio:.2f}"
            cv2.putText(sheet, f"{t}: {shown}", (x0 + 1, y0 + h + 12), font, 0.33 * max(1, scale * 0.8),
                        colour, 1, cv2.LINE_AA)
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="PNG file to write")
    parser.add_argument("--ids", type=int, default=4, help="how many identities (default 4)")
    parser.add_argument("--persons", type=int, nargs="*", help="explicit person numbers instead of --ids")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--frames", type=int, default=8, help="frames per strip (default 8)")
    parser.add_argument("--step", type=int, default=2, help="frame step within a strip (default 2)")
    parser.add_argument("--scale", type=int, default=1, help="enlarge frames (nearest neighbour)")
    parser.add_argument("--palette", action="store_true", help="save as a 256-colour PNG (smaller file)")
    args = parser.parse_args(argv)
    config = SynthConfig(ids=max(args.ids, max(args.persons or [0]), 150), seed=args.seed)
    ids = args.persons or pick_ids(config, args.ids)
    sheet = render_sheet(config, ids, args.frames, args.step, args.scale)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.palette:
        from PIL import Image

        Image.fromarray(sheet).quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            args.out, optimize=True)
    else:
        cv2.imwrite(str(args.out), sheet[:, :, ::-1])
    print(f"contact sheet of persons {ids} written to {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
