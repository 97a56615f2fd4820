"""The ``reidviewer`` command.

Subcommands share one vocabulary: ``--dataset NAME --root DIR --protocol NAME
--checkpoint FILE --split N --workspace DIR``. With no subcommand it opens the demo
(the SynthWalk set generated once into the workspace, and the shipped checkpoint).
Errors the user can act on are printed as one line (``reidviewer: error: ...``) with exit
status 2, never as a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from reidviewer import __version__
from reidviewer.errors import ReidViewerError

#: Size of the demo data set generated on first launch.
DEMO_IDS = 150
DEMO_SEED = 0


def _add_workspace(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--workspace",
        metavar="DIR",
        help="workspace folder for caches, results, runs, annotations and figures "
        "(default: $REIDVIEWER_WORKSPACE or the user data folder)",
    )


def _add_dataset(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--root", metavar="DIR", required=required, help="dataset folder (opened read-only)")
    p.add_argument(
        "--dataset",
        metavar="NAME",
        default="auto",
        help="ilidsvid, prid2011, mars, dukevideo, folder, synthwalk, or auto (default: recognise the layout)",
    )
    p.add_argument(
        "--protocol",
        metavar="NAME",
        default=None,
        help="split protocol (PRID: ran (default), wang; MARS: torchreid (default), official)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``reidviewer`` command."""
    parser = argparse.ArgumentParser(
        prog="reidviewer",
        description="Video person re-identification with Refined Attention Networks: "
        "viewer, training, evaluation and figures.",
    )
    parser.add_argument("--version", action="version", version=f"reidviewer {__version__}")
    _add_workspace(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="summarise a dataset: identities, tracklets, frames, cameras, splits")
    _add_dataset(p)
    _add_workspace(p)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("synth", help="generate a SynthWalk data set (iLIDS-VID layout)")
    p.add_argument("out", metavar="OUT", help="folder to write (must not exist or be empty)")
    p.add_argument("--ids", type=int, default=DEMO_IDS, help="number of identities (default 150)")
    p.add_argument("--seed", type=int, default=DEMO_SEED, help="random seed (default 0)")
    p.add_argument("--min-len", type=int, default=None, help="shortest tracklet (frames)")
    p.add_argument("--max-len", type=int, default=None, help="longest tracklet (frames)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.set_defaults(func=cmd_synth)

    _register_optional_commands(sub)
    return parser


def _register_optional_commands(sub: Any) -> None:
    """Subcommands from other layers register themselves here (they import lazily)."""
    try:
        from reidviewer import cli_engine
    except ModuleNotFoundError as exc:
        if exc.name != "reidviewer.cli_engine":
            raise
    else:
        cli_engine.register(sub, _add_dataset, _add_workspace)
    try:
        from reidviewer import cli_export
    except ModuleNotFoundError as exc:
        if exc.name != "reidviewer.cli_export":
            raise
    else:
        cli_export.register(sub, _add_dataset, _add_workspace)


def _workspace(args: argparse.Namespace):
    from reidviewer.workspace import Workspace

    return Workspace(getattr(args, "workspace", None))


def format_summary(summary: dict) -> str:
    """A dataset summary as a readable table."""
    length = summary["length"]
    lines = [
        f"dataset     {summary['dataset']}   (protocol {summary['protocol']}"
        + (f"; available: {', '.join(summary['protocols'])})" if summary.get("protocols") else ")"),
        f"root        {summary['root']}",
        f"identities  {summary['identities']:,}",
        f"tracklets   {summary['tracklets']:,}",
        f"frames      {summary['frames']:,}",
        f"cameras     {summary['cameras']}",
        f"length      min {length['min']}, median {length['median']:.0f}, "
        f"mean {length['mean']:.1f}, max {length['max']} frames",
        "",
        f"{'split':<10}{'train ids':>10}{'train trk':>11}{'query ids':>11}{'query trk':>11}"
        f"{'gallery ids':>13}{'gallery trk':>13}",
    ]
    for i, s in enumerate(summary["splits"]):
        lines.append(
            f"{i:<10}{s['train']['identities']:>10,}{s['train']['tracklets']:>11,}"
            f"{s['query']['identities']:>11,}{s['query']['tracklets']:>11,}"
            f"{s['gallery']['identities']:>13,}{s['gallery']['tracklets']:>13,}"
        )
    for notice in summary.get("notices", []):
        lines.append(f"note: {notice}")
    return "\n".join(lines)


def cmd_info(args: argparse.Namespace) -> int:
    """``reidviewer info``: print a dataset's summary."""
    from reidviewer.data.registry import open_dataset

    dataset = open_dataset(args.root, args.dataset, args.protocol, _workspace(args))
    summary = dataset.summary()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(format_summary(summary))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    """``reidviewer synth``: generate a SynthWalk set."""
    from reidviewer.data.synthwalk import SynthConfig, generate

    kwargs: dict[str, Any] = {"ids": args.ids, "seed": args.seed}
    if args.min_len is not None:
        kwargs["min_len"] = args.min_len
    if args.max_len is not None:
        kwargs["max_len"] = args.max_len
    config = SynthConfig(**kwargs)
    out = generate(Path(args.out), config, workers=args.workers, progress=_stderr_progress("synth"))
    print(f"SynthWalk: {config.ids} identities written to {out}")
    return 0


def _stderr_progress(label: str):
    """A progress callback ``(done, total)`` drawing a one-line bar on stderr when it is a terminal."""
    tty = sys.stderr.isatty()

    def report(done: int, total: int) -> None:
        if not tty or total <= 0:
            return
        width = 30
        filled = int(width * done / total)
        sys.stderr.write(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return report


def demo_dataset_dir(workspace) -> Path:
    """Where the SynthWalk demo lives in a workspace."""
    return workspace.datasets_dir / f"synthwalk-{DEMO_IDS}-seed{DEMO_SEED}"


def ensure_demo(workspace, progress=None) -> Path:
    """Generate the SynthWalk demo into the workspace once; return its folder."""
    from reidviewer.data.synthwalk import SynthConfig, generate, is_complete

    out = demo_dataset_dir(workspace)
    if not is_complete(out):
        generate(out, SynthConfig(ids=DEMO_IDS, seed=DEMO_SEED), progress=progress, overwrite=True)
    return out


def cmd_default(args: argparse.Namespace) -> int:
    """No subcommand: open the viewer on the demo (or print its summary without the viewer)."""
    try:
        from reidviewer.app import launch  # type: ignore[attr-defined]
    except ImportError:
        launch = None
    if launch is not None:
        return launch(args)
    from reidviewer.data.registry import open_dataset

    ws = _workspace(args)
    root = ensure_demo(ws, progress=_stderr_progress("generating SynthWalk demo"))
    print(format_summary(open_dataset(root, "synthwalk", None, ws).summary()))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``reidviewer`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", cmd_default)
    try:
        return int(func(args) or 0)
    except ReidViewerError as exc:
        print(f"reidviewer: error: {exc}", file=sys.stderr)
        return 2
    except (ValueError, IndexError) as exc:
        print(f"reidviewer: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("reidviewer: interrupted", file=sys.stderr)
        return 130
