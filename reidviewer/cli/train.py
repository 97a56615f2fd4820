"""``reidviewer train``: the command line's glue to ``engine.train.train``.

Settings are checked where they are parsed (whole positive numbers, finite learning rates,
milestones that are epochs), with messages that name the option. Ctrl+C and SIGTERM (what
cluster schedulers and ``timeout`` send) stop the run at the next step with a checkpoint;
the exit status then says how it ended: 0 finished (or reached its time budget), 130 stopped
by Ctrl+C, 143 stopped by SIGTERM, 3 stopped because the embedding collapsed.
"""
from __future__ import annotations

import argparse
import math
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from reidviewer.cli.common import add_dataset, add_device, add_split, add_workspace, workspace_of
from reidviewer.engine.recipes import DEFAULT_RECIPE, RECIPE_DEFAULTS, RECIPE_ONLY, RECIPES, TrainConfig, recipe_summary
from reidviewer.errors import UsageError
from reidviewer.model.config import HEAD_TRAITS, POOLINGS

#: Exit status of a run that stopped because its embedding collapsed.
EXIT_COLLAPSED = 3


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if not 1 <= value <= 10**9:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to 1,000,000,000, not {text}")
    return value


def _count(text: str) -> int:
    value = _positive_int(text) if text.strip() != "0" else 0
    return value


def _finite(text: str, positive: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, not {text!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise argparse.ArgumentTypeError(f"must be a finite number {'> 0' if positive else '>= 0'}, not {text}")
    return value


def _positive_float(text: str) -> float:
    return _finite(text, positive=True)


def _milestones(text: str) -> tuple[int, ...]:
    parts = [x.strip() for x in text.split(",") if x.strip()]
    try:
        values = tuple(int(x) for x in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be epochs separated by commas (e.g. 300,600), not {text!r}") from None
    if any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(f"epochs must be >= 0, not {text!r}")
    return values


def register(sub: Any) -> None:
    """Add ``train``."""
    heads = sorted(HEAD_TRAITS)
    p = sub.add_parser(
        "train", help="train a model (the fast recipe or the paper's; also under torchrun)",
        description="Train a video re-ID model. Recipes: " + "; ".join(
            f"{r}: {recipe_summary(r)}" for r in RECIPES) + ". Ctrl+C or SIGTERM stops with a checkpoint "
        "(exit 130 / 143); --resume continues exactly.")
    add_dataset(p)
    add_workspace(p)
    add_split(p)
    p.add_argument("--recipe", choices=RECIPES, default=None,
                   help=f"training recipe (default {DEFAULT_RECIPE}; a resumed run keeps its own)")
    p.add_argument("--minutes", type=_positive_float, default=None,
                   help="time budget: stop with a checkpoint after this many minutes (the fast recipe's "
                        "learning-rate schedule fits it, so the run ends annealed)")
    p.add_argument("--head", default="ran", choices=heads,
                   help="temporal head: " + "; ".join(f"{h}: {HEAD_TRAITS[h].description}" for h in heads)
                   + " (default ran)")
    p.add_argument("--iterations", type=_count, default=3, help="refinement iterations K of ran/softmax (default 3)")
    p.add_argument("--pooling", default=None, choices=POOLINGS,
                   help="attention pooling P: mean (1/T)Σαx, sum Σαx (literal eq. 2), l1 Σαx/Σα "
                        f"(default: paper mean, fast {RECIPE_DEFAULTS['fast']['model']['pooling']})")
    p.add_argument("--epochs", type=_count, default=None,
                   help=f"epochs (default: paper {RECIPE_DEFAULTS['paper']['epochs']}, "
                        f"fast {RECIPE_DEFAULTS['fast']['epochs']})")
    p.add_argument("--lr", type=_positive_float, default=None,
                   help=f"learning rate (default: paper {RECIPE_DEFAULTS['paper']['lr']:g}, "
                        f"fast {RECIPE_DEFAULTS['fast']['lr']:g})")
    p.add_argument("--attention-lr-scale", type=_finite, default=None,
                   help="learning-rate multiplier for the attention parameters θ, θ′ (default 1)")
    p.add_argument("--hinge", default=None, choices=("eq5", "rcn_code"),
                   help="paper: contrastive term eq5 (squared, the paper; default) or rcn_code (RCN's)")
    p.add_argument("--init-from", metavar="FILE", default=None,
                   help="start from the matching weights of this checkpoint (e.g. a trained mean-pooling trunk)")
    p.add_argument("--milestones", type=_milestones, default=None,
                   help="paper: comma-separated epochs where lr ÷10 (default 300,600)")
    p.add_argument("--pairs-per-step", type=_positive_int, default=None,
                   help="paper: Siamese pairs per optimiser step (default 1)")
    p.add_argument("--ids-per-batch", type=_positive_int, default=None,
                   help=f"fast: identities P per batch (default {TrainConfig.ids_per_batch})")
    p.add_argument("--tracklets-per-id", type=_positive_int, default=None,
                   help=f"fast: tracklets K per identity (default {TrainConfig.tracklets_per_id})")
    p.add_argument("--seq-len", type=_positive_int, default=None,
                   help=f"frames per training clip (default: paper {RECIPE_DEFAULTS['paper']['seq_len']}, "
                        f"fast {RECIPE_DEFAULTS['fast']['seq_len']})")
    add_device(p)
    p.add_argument("--threads", type=_count, default=0,
                   help="CPU threads (default: $OMP_NUM_THREADS, else the cores this process may use)")
    p.add_argument("--seed", type=_count, default=None, help="random seed (default 1)")
    p.add_argument("--eval-every", type=_count, default=None,
                   help="validation R1/mAP every N epochs and at the end (0: never; "
                        f"default: paper {RECIPE_DEFAULTS['paper']['eval_every']}, "
                        f"fast {RECIPE_DEFAULTS['fast']['eval_every']})")
    p.add_argument("--checkpoint-every", type=_count, default=None, help="keep a numbered checkpoint every N epochs")
    p.add_argument("--checkpoint-minutes", type=_positive_float, default=None, metavar="M",
                   help="also keep the weights every M minutes (minute_NNN.safetensors: learning curves)")
    p.add_argument("--no-flow", action="store_true", help="zero the optical-flow channels")
    p.add_argument("--keep-going", action="store_true",
                   help="do not stop when the embedding collapses (default: stop with the weights from before)")
    p.add_argument("--out", metavar="RUN", default=None, help="run name (folder under the workspace's runs/) or path")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run in --out if there is one")
    p.set_defaults(func=cmd_train)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` a ``reidviewer train`` command line asks for.

    Raises:
        UsageError: a setting of the other recipe, or a value out of range (naming the option).
    """
    recipe = args.recipe or DEFAULT_RECIPE
    flags = {"pairs_per_step": "--pairs-per-step", "ids_per_batch": "--ids-per-batch",
             "tracklets_per_id": "--tracklets-per-id", "hinge": "--hinge", "milestones": "--milestones"}
    owners = {**RECIPE_ONLY, "hinge": "paper", "milestones": "paper"}
    for name, flag in flags.items():
        if getattr(args, name) is not None and owners[name] != recipe:
            raise UsageError(f"{flag} is a setting of --recipe {owners[name]}, not of --recipe {recipe}")
    if args.pooling is not None and not HEAD_TRAITS[args.head].attention:
        raise UsageError(f"--pooling is a setting of the RAN head, not of --head {args.head}")
    kwargs: dict[str, Any] = dict(recipe=recipe, root=str(args.root), dataset=args.dataset, protocol=args.protocol,
                                  split=args.split, head=args.head, iterations=args.iterations, device=args.device,
                                  threads=args.threads, run_name=args.out or "",
                                  stop_on_collapse=not args.keep_going, use_flow=not args.no_flow)
    for name in ("epochs", "lr", "attention_lr_scale", "milestones", "pairs_per_step", "ids_per_batch",
                 "tracklets_per_id", "seq_len", "seed", "eval_every", "checkpoint_every", "checkpoint_minutes", "minutes"):
        if getattr(args, name) is not None:
            kwargs[name] = getattr(args, name)
    if args.hinge:
        kwargs["loss"] = {"hinge": args.hinge}
    if args.init_from:
        kwargs["init_from"] = str(Path(args.init_from).expanduser().resolve())
    if args.pooling is not None:
        kwargs["model"] = {"pooling": args.pooling}
    return TrainConfig(**kwargs)


def cmd_train(args: argparse.Namespace) -> int:
    """``reidviewer train``."""
    from reidviewer.engine.train import resumed_config, run_dir_for, run_is_started

    ws = workspace_of(args)
    config = config_from_args(args)
    run_dir = run_dir_for(ws, config.run_name)
    if args.resume:
        if not args.out:
            raise UsageError("--resume needs --out RUN: the run to continue")
        # "Continue exactly where it stopped": the run's own settings, not this command line's
        # defaults; only --epochs, --minutes, --device and --threads may change.
        ignored = [flag for flag, value in (("--recipe", args.recipe), ("--lr", args.lr),
                                            ("--milestones", args.milestones),
                                            ("--pairs-per-step", args.pairs_per_step), ("--seed", args.seed),
                                            ("--pooling", args.pooling), ("--hinge", args.hinge),
                                            ("--init-from", args.init_from),
                                            ("--attention-lr-scale", args.attention_lr_scale)) if value is not None]
        if ignored:
            print(f"note: {', '.join(ignored)} ignored with --resume (the run keeps its own settings; "
                  "only --epochs, --minutes, --device and --threads can change)", file=sys.stderr)
        if args.epochs is None:
            config.epochs = 0
        config = resumed_config(run_dir, config)
    elif run_is_started(run_dir):
        if not args.overwrite:
            raise UsageError(f"{run_dir} holds a run already: --resume continues it, --out NAME starts a new "
                             "one beside it, --overwrite replaces it")
        shutil.rmtree(run_dir)
    return run_training(config, ws, resume=args.resume)


def run_training(config: TrainConfig, workspace, resume: bool = False) -> int:
    """Train with a progress line on stderr; Ctrl+C and SIGTERM stop cleanly with a checkpoint.

    Returns:
        The exit status: 0 finished, 130 stopped by Ctrl+C, 143 by SIGTERM, 3 collapsed.
    """
    from reidviewer.cli import EXIT_INTERRUPTED, EXIT_TERMINATED
    from reidviewer.engine.train import TrainProgress, _distributed, available_cpus, train

    if not config.threads and "OMP_NUM_THREADS" not in os.environ:
        config.threads = available_cpus()
    stop = {"signal": None}

    def on_signal(signum, frame) -> None:
        if stop["signal"] == signum and signum == signal.SIGINT:
            raise KeyboardInterrupt
        stop["signal"] = signum
        name = "Ctrl+C" if signum == signal.SIGINT else "SIGTERM"
        print(f"\n{name}: stopping after this step and saving a checkpoint"
              + (" (Ctrl+C again to abort)…" if signum == signal.SIGINT else "…"), file=sys.stderr)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    tty = sys.stderr.isatty()
    said: set[str] = set()

    def show(p: TrainProgress) -> None:
        for warning in p.health:
            # Said once per kind of problem, not per changing number ("… chance (6.50 against …):").
            kind = warning.split(":")[0].split(" (")[0]
            if kind not in said:
                said.add(kind)
                print(("\n" if tty else "") + f"warning: {warning}", file=sys.stderr)
        losses = " ".join(f"{k} {v:.3f}" for k, v in p.losses.items())
        val = f" val R1 {p.val_rank1:.3f} mAP {p.val_map:.3f}" if p.val_rank1 is not None and p.val_map is not None \
            else ""
        eta = f" ETA {p.eta_s / 60:.1f} min" if math.isfinite(p.eta_s) else ""
        flag = " ⚠" if p.health else ""
        done = p.epoch >= p.epochs  # after the last epoch: its last step, not step 0 of the next
        step = p.steps_per_epoch if done else p.step
        line = (f"epoch {min(p.epoch + 1, max(p.epochs, 1))}/{p.epochs} step {step}/{p.steps_per_epoch} {losses} "
                f"lr {p.lr:.3g} {p.tracklets_per_s:.0f} tracklets/s{val}{eta}{flag}")
        if tty:
            sys.stderr.write("\r" + line[:160].ljust(160))
            sys.stderr.flush()
        elif p.message:
            print(line + f" ({p.message})", file=sys.stderr)

    try:
        outcome = train(config, workspace, progress=show, should_stop=lambda: stop["signal"] is not None,
                        resume=resume)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if tty:
        sys.stderr.write("\n")
    rank, _ = _distributed()
    if rank == 0:
        val = (f", validation R1 {outcome.val_rank1:.3f} mAP {outcome.val_map:.3f}"
               if outcome.val_rank1 is not None and outcome.val_map is not None else "")
        state = {"finished": "finished", "budget": "time budget reached", "stopped": "stopped",
                 "collapsed": "stopped (the embedding collapsed; the checkpoint holds the weights from before)"}
        print(f"{state[outcome.reason]} after {outcome.epochs_done} epochs ({outcome.global_step} steps){val}; "
              f"checkpoint {outcome.checkpoint}")
    if outcome.reason == "collapsed":
        return EXIT_COLLAPSED
    if outcome.reason == "stopped":
        return EXIT_TERMINATED if stop["signal"] == signal.SIGTERM else EXIT_INTERRUPTED
    return 0
