"""``reidviewer info`` and ``reidviewer synth``: the data layer's commands."""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from reidviewer.cli.common import add_dataset, add_workspace, stderr_progress, workspace_of
from reidviewer.demo import DEMO_IDS, DEMO_SEED


def register(sub: Any) -> None:
    """Add ``info`` and ``synth``."""
    p = sub.add_parser("info", help="summarise a dataset: identities, tracklets, frames, cameras, splits",
                       description="Summarise a dataset: identities, tracklets, frames, cameras and splits, "
                                   "and what preprocessing it would cost.")
    add_dataset(p)
    add_workspace(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("synth", help="generate a SynthWalk dataset",
                       description="Generate a SynthWalk dataset: the demo's iLIDS-VID layout (default), a "
                                   "folder of tracklets, or MARS's layout at MARS's counts.")
    p.add_argument("out", metavar="OUT", help="folder to write (must not exist or be empty)")
    p.add_argument("--layout", default="ilidsvid", choices=("ilidsvid", "folder", "mars"),
                   help="ilidsvid (two cameras; default), folder ({train,query,gallery}/person/camera/tracklet) "
                        "or mars (bbox_train/, bbox_test/, info/ at MARS's counts times --scale)")
    p.add_argument("--ids", type=int, default=None, help=f"number of identities (default {DEMO_IDS}; mars: "
                                                         "1,251 times --scale)")
    p.add_argument("--scale", type=float, default=1.0, help="mars: fraction of MARS's counts (default 1)")
    p.add_argument("--seed", type=int, default=DEMO_SEED, help=f"random seed (default {DEMO_SEED})")
    p.add_argument("--min-len", type=int, default=None, help="shortest tracklet (frames)")
    p.add_argument("--max-len", type=int, default=None, help="longest tracklet (frames)")
    p.add_argument("--cameras", type=int, default=None, help="cameras (folder: default 6)")
    p.add_argument("--tracklets", metavar="MIN,MAX", default=None,
                   help="tracklets per identity (folder: default 6,16)")
    p.add_argument("--size", metavar="HxW", default=None, help="frame size in pixels, e.g. 116x52")
    p.add_argument("--jpeg", metavar="QUALITY", type=int, default=None, help="write JPEG frames of this quality")
    p.add_argument("--render-scale", type=float, default=None,
                   help="draw at this fraction of the size and scale up: low-resolution crops (e.g. 0.5)")
    p.add_argument("--person-scale", type=float, default=None,
                   help="the person's size in the crop relative to the camera's framing (e.g. 1.2: tight boxes)")
    p.add_argument("--unknown-camera", type=float, default=None,
                   help="folder: share of tracklets whose camera folder is 'unknown'")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(func=cmd_synth)


def format_summary(summary: dict) -> str:
    """A dataset summary as a readable table."""
    from reidviewer.data.cache import describe_rate, format_minutes

    length = summary["length"]
    lines = [
        f"dataset     {summary['dataset']}   (protocol {summary['protocol']}"
        + (f"; available: {', '.join(summary['protocols'])})" if summary.get("protocols") else ")"),
        f"root        {summary['root']}",
        f"identities  {summary['identities']:,}",
        f"tracklets   {summary['tracklets']:,}",
        f"frames      {summary['frames']:,}",
        f"cameras     {summary['cameras']}",
        f"length      min {length['min']}, median {length['median']:g}, "
        f"mean {length['mean']:.1f}, max {length['max']} frames",
        "",
        f"{'split':<7}{'train identities':>17}{'train tracklets':>16}{'query identities':>17}"
        f"{'query tracklets':>16}{'gallery identities':>19}{'gallery tracklets':>18}",
    ]
    for s in summary["splits"]:
        lines.append(
            f"{s['split']:<7}{s['train']['identities']:>17,}{s['train']['tracklets']:>16,}"
            f"{s['query']['identities']:>17,}{s['query']['tracklets']:>16,}"
            f"{s['gallery']['identities']:>19,}{s['gallery']['tracklets']:>18,}"
        )
    cost = summary.get("cost")
    if cost:
        lines.append("")
        test = f" ({cost['test_cache_gb']:.1f} GB for split 0's query and gallery)" if summary.get("splits") else ""
        lines.append(f"preprocessing cache: {cost['cache_gb']:.1f} GB for every frame{test}, "
                     f"{cost['cached_fraction']:.0%} cached already")
        evaluate = (f"{format_minutes(cost.get('test_preprocess_minutes', 0.0))} to evaluate split 0, "
                    if summary.get("splits") else "")
        lines.append(f"preprocessing time: {evaluate}{format_minutes(cost['preprocess_minutes'])} for all that is "
                     f"not cached yet, at {describe_rate(cost)}")
    for notice in summary.get("notices", []):
        lines.append(f"note: {notice}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    """``reidviewer info``: print a dataset's summary and what preprocessing it would cost."""
    from reidviewer.data.cache import estimate_cost
    from reidviewer.data.registry import open_dataset

    ws = workspace_of(args)
    dataset = open_dataset(args.root, args.dataset, args.protocol, ws)
    summary = dataset.summary()
    summary["cost"] = estimate_cost(dataset, ws)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
    return 0


def _pair(text: str, sep: str, what: str) -> tuple[int, int]:
    from reidviewer.errors import UsageError

    try:
        a, b = (int(x) for x in text.lower().split(sep))
    except ValueError:
        raise UsageError(f"{what} must look like A{sep}B with whole numbers, not {text!r}") from None
    return a, b


def cmd_synth(args: argparse.Namespace) -> int:
    """``reidviewer synth``: generate a SynthWalk set."""
    from reidviewer.data.synthwalk import SynthConfig, generate
    from reidviewer.errors import UsageError

    kwargs: dict[str, Any] = {"seed": args.seed}
    if args.layout == "folder":
        # The folder layout's defaults have the traits of short real tracklets (MARS-like).
        kwargs.update(layout="folder", cameras=6, min_tracklets=6, max_tracklets=16)
    if args.ids is not None:
        kwargs["ids"] = args.ids
    for name in ("min_len", "max_len", "cameras", "render_scale", "unknown_camera", "person_scale"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if args.tracklets:
        kwargs["min_tracklets"], kwargs["max_tracklets"] = _pair(args.tracklets, ",", "--tracklets")
    if args.size:
        kwargs["height"], kwargs["width"] = _pair(args.size, "x", "--size")
    if args.jpeg is not None:
        kwargs.update(image_format="jpg", jpeg_quality=args.jpeg)
    try:
        if args.layout == "mars":
            kwargs.pop("seed")
            config = SynthConfig.mars(scale=args.scale, seed=args.seed, **kwargs)
        else:
            if args.scale != 1.0:
                raise UsageError("--scale is a setting of --layout mars")
            config = SynthConfig(**kwargs)
    except ValueError as exc:
        raise UsageError(f"synth: {exc}") from None
    out = generate(Path(args.out), config, workers=args.workers, progress=stderr_progress("synth"))
    print(f"SynthWalk ({config.layout} layout): {config.ids} identities written to {out}")
    return 0
