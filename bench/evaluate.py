"""End-to-end ``reidviewer evaluate`` on a 150-identity SynthWalk set, cold and warm (issue 4).

    .venv/bin/python bench/evaluate.py [--data DIR] [--json]

Cold: an empty workspace (frames decoded, flow computed and cached, features extracted,
results written). Warm: the same command again (the results file is reused). Also: warm
preprocessing cache but no results file (features recomputed). Each is a fresh process
running the real command line.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(data: Path, ckpt: Path, ws: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "reidviewer", "evaluate", "--root", str(data), "--checkpoint", str(ckpt),
                    "--workspace", str(ws)], check=True, capture_output=True, cwd=ROOT)
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default=None)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from reidviewer.data.synthwalk import SynthConfig, generate, is_complete
    from reidviewer.demo import CHECKPOINT_DIR, SHIPPED_CHECKPOINT

    base = Path(tempfile.mkdtemp(prefix="rv-eval-bench-"))
    data = Path(args.data) if args.data else base / "synth150"
    if not is_complete(data):
        generate(data, SynthConfig(ids=150, seed=0), overwrite=True)
    ckpt = CHECKPOINT_DIR / SHIPPED_CHECKPOINT
    ws = base / "ws"
    cold = run(data, ckpt, ws)
    warm = run(data, ckpt, ws)
    shutil.rmtree(ws / "results")
    features_only = run(data, ckpt, ws)
    res = {"cold_s": cold, "warm_s": warm, "cached_frames_no_results_s": features_only}
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"reidviewer evaluate, 150-id SynthWalk (75 queries x 75 gallery, split 0): cold {cold:.1f} s, "
              f"warm {warm:.2f} s (x{cold / warm:.0f}); preprocessed frames cached but no results file: "
              f"{features_only:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
