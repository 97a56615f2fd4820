"""Benchmark: CNN frame-feature extraction speed against the CPU's float32 roofline.

Measures, in one run and interleaved (so background load hits every figure alike):

* the float32 matmul peak (best of 1024² and 2048² ``torch.mm`` loops), giving
  roofline_fps = peak_flops / (2 × MACs per frame), MACs = 28.5 M (3 convs + 2 frame FCs);
* the eager NCHW baseline: the literal SPEC layer order (conv → tanh → pool) on the whole
  batch in NCHW, under ``torch.inference_mode``;
* the fast path ``reidviewer.model.embed_frames`` (channels_last, pool before tanh, 128-frame
  chunks), and the same with ``compile=True`` (compile time reported);

at batches of 128 and 1024 frames. ``cnn_fps`` is the default fast path (no compile) at
batch 1024; the target is ``cnn_roofline_ratio`` ≥ 0.80.

Then, from stored uint8 frames (the frame cache's form) to features, as ``reidviewer evaluate``
runs it (``stored_path_rates``): the numpy preprocessing + CNN baseline against the fused
torch preprocessing, eager and compiled. Issue 19's feature target (2,500 frames/s) sits above
this machine's roofline on a busy day; the ratio to the same run's roofline is the comparable
figure.

If ``bench/pipeline.py`` exists with ``measure_flow()`` and ``measure_preprocess()``, their
dicts are merged into the ``--json`` output.

Usage: ``python bench/model.py [--json] [--rounds N] [--no-compile] [--no-pipeline]``
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import best_rate  # noqa: E402  (bench/_common.py)

from reidviewer.model import ModelConfig, build_model, embed_frames, extract_features, spec_reference_trunk  # noqa: E402
from reidviewer.model.inference import compile_seconds  # noqa: E402


def macs_per_frame(model: torch.nn.Module) -> int:
    """Multiply-accumulates of the CNN and the frame FC layers for one frame."""
    total = 0
    h, w = model.cnn.input_size
    for conv in model.cnn.convs:
        k = conv.kernel_size[0]
        p = conv.padding[0]
        ho, wo = h + 2 * p - k + 1, w + 2 * p - k + 1
        total += conv.out_channels * ho * wo * conv.in_channels * k * k
        h, w = ho // 2, wo // 2
    total += sum(m.in_features * m.out_features for m in model.head.embed.modules() if isinstance(m, torch.nn.Linear))
    return total


def matmul_peak() -> float:
    """Best float32 FLOP/s of square ``torch.mm`` loops (1024² and 2048²).

    Short timed calls, best kept: under background load the quiet moments still show the peak.
    """
    best = 0.0
    for n, loops, reps in ((1024, 8, 6), (2048, 1, 6)):
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.empty(n, n)

        def run() -> None:
            for _ in range(loops):
                torch.mm(a, b, out=out)

        best = max(best, best_rate(run, 2.0 * n**3 * loops, reps))
    return best


def pipeline_figures() -> dict[str, Any]:
    """Figures of bench/pipeline.py (optical flow, preprocessing), if that script exists.

    Run in a fresh process: preprocessing's worker processes re-import the main module, and
    this one imports torch at the top, which cost each worker ~1 s and halved the measured
    frames/s (≈ 850 against ≈ 1,650).
    """
    script = Path(__file__).resolve().parent / "pipeline.py"
    if not script.is_file():
        return {}
    import subprocess

    try:
        out = subprocess.run([sys.executable, str(script), "--json"], capture_output=True, text=True,
                             timeout=900, check=True)
        return json.loads(out.stdout[out.stdout.index("{"):])
    except (subprocess.SubprocessError, ValueError, IndexError) as exc:
        return {"pipeline_error": f"{type(exc).__name__}: {exc}"}


def stored_path_rates(model: torch.nn.Module, rounds: int, compile: bool) -> dict[str, float]:
    """Frames/s from stored uint8 frames to features, as ``reidviewer evaluate`` runs it.

    ``numpy+cnn``: the numpy preprocessing (``to_network_input`` + centre crop) per tracklet,
    then the fast CNN path (the way until issue 19; the baseline); ``fused``: preprocessing in
    torch, fused and chunked (``data.network_batch``) via ``extract_features(stored=True)``;
    ``fused+compile``: the same compiled with the CNN into one graph. 1,024 frames as 16
    tracklets of 64, random stored values.
    """
    import numpy as np

    from reidviewer.data.preprocess import to_network_input
    from reidviewer.data.transforms import test_transform

    rng = np.random.default_rng(0)
    clips = [rng.integers(0, 256, (64, 5, 64, 48), dtype=np.uint8) for _ in range(16)]
    n = sum(len(c) for c in clips)

    def numpy_then_cnn() -> None:
        tensors = [torch.from_numpy(np.ascontiguousarray(test_transform(to_network_input(c)))) for c in clips]
        extract_features(model, tensors)

    runs: dict[str, Callable[[], Any]] = {
        "numpy+cnn": numpy_then_cnn,
        "fused": lambda: extract_features(model, clips, stored=True),
    }
    if compile:
        extract_features(model, clips[:2], stored=True, compile=True)  # compile outside the timing
        runs["fused+compile"] = lambda: extract_features(model, clips, stored=True, compile=True)
    rates = {name: 0.0 for name in runs}
    for _ in range(max(1, rounds)):
        for name, fn in runs.items():
            rates[name] = max(rates[name], best_rate(fn, n, 2))
    return rates


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved measurement rounds (best is kept)")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variant")
    parser.add_argument("--no-pipeline", action="store_true", help="skip bench/pipeline.py's figures")
    args = parser.parse_args(argv)

    pipeline = {} if args.no_pipeline else pipeline_figures()

    threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build_model(ModelConfig()).eval()
    macs = macs_per_frame(model)
    reference = spec_reference_trunk(model.cnn)

    def eager(x: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model.head.embed(reference(x))

    batches = (128, 1024)
    data = {b: torch.randn(b, 5, 56, 40) for b in batches}
    variants: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
        "eager": eager,
        "fast": lambda x: embed_frames(model, x),
    }
    compile_s = None
    if not args.no_compile:
        t0 = time.perf_counter()
        embed_frames(model, data[128], compile=True)
        compile_s = compile_seconds(model)
        if compile_s is None:
            print(f"torch.compile unavailable; skipped ({time.perf_counter() - t0:.1f} s)", file=sys.stderr)
        else:
            variants["compiled"] = lambda x: embed_frames(model, x, compile=True)

    # faithfulness: every variant against the eager reference
    max_diff = {
        name: float((fn(data[1024][:256]) - eager(data[1024][:256])).abs().max()) for name, fn in variants.items()
    }

    peak = 0.0
    fps: dict[str, dict[int, float]] = {name: {b: 0.0 for b in batches} for name in variants}
    for _ in range(max(1, args.rounds)):
        peak = max(peak, matmul_peak())
        for b in batches:
            for name, fn in variants.items():
                x = data[b]
                fps[name][b] = max(fps[name][b], best_rate(lambda fn=fn, x=x: fn(x), b, 2 if b > 128 else 8))

    stored = stored_path_rates(model, args.rounds, "compiled" in variants)
    peak = max(peak, matmul_peak())
    roofline = peak / (2.0 * macs)
    cnn_fps = fps["fast"][1024]
    result: dict[str, Any] = {
        "threads": threads,
        "macs_per_frame": macs,
        "matmul_peak_gflops": peak / 1e9,
        "roofline_fps": roofline,
        "cnn_fps": cnn_fps,
        "cnn_roofline_ratio": cnn_fps / roofline,
        "eager_fps": fps["eager"][1024],
        "speedup_vs_eager": cnn_fps / fps["eager"][1024],
        "cnn_fps_by_batch": {str(b): fps["fast"][b] for b in batches},
        "eager_fps_by_batch": {str(b): fps["eager"][b] for b in batches},
        "max_abs_diff_vs_eager": max_diff,
        "stored_fps": stored,
    }
    if "compiled" in fps:
        result.update(
            cnn_fps_compiled=fps["compiled"][1024],
            cnn_roofline_ratio_compiled=fps["compiled"][1024] / roofline,
            cnn_fps_compiled_by_batch={str(b): fps["compiled"][b] for b in batches},
            compile_seconds=compile_s,
        )
    result.update(pipeline)

    if args.json:
        print(json.dumps(result))
        return 0
    print(f"threads {threads}; {macs / 1e6:.2f} M MACs/frame; float32 matmul peak {peak / 1e9:.1f} GFLOP/s")
    print(f"roofline {roofline:8.0f} frames/s")
    print(f"{'batch':>6} {'eager NCHW':>12} {'fast':>10} {'ratio':>6}" + (f" {'compiled':>10} {'ratio':>6}" if "compiled" in fps else ""))
    for b in batches:
        line = f"{b:>6} {fps['eager'][b]:>12.0f} {fps['fast'][b]:>10.0f} {fps['fast'][b] / roofline:>6.2f}"
        if "compiled" in fps:
            line += f" {fps['compiled'][b]:>10.0f} {fps['compiled'][b] / roofline:>6.2f}"
        print(line)
    print(
        f"cnn_fps {cnn_fps:.0f} = {cnn_fps / roofline:.2f} of roofline (target >= 0.80), "
        f"{cnn_fps / fps['eager'][1024]:.1f}x eager NCHW"
    )
    if compile_s is not None:
        print(f"torch.compile: first call {compile_s:.1f} s")
    print("from stored frames to features (what evaluate's feature stage does per frame): "
          + ", ".join(f"{k} {v:.0f} frames/s ({v / roofline:.2f} of roofline)" for k, v in stored.items()))
    print("max |fast - eager| " + ", ".join(f"{k} {v:.1e}" for k, v in max_diff.items()))
    for k, v in result.items():
        if k.startswith(("flow", "preprocess", "pipeline")):
            print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
