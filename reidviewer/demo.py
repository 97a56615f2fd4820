"""The embedded default: the SynthWalk demo set and the shipped checkpoint.

``reidviewer`` with no arguments opens the demo: a 150-person SynthWalk set generated once
into the workspace, and the shipped RAN checkpoint. This module says where both are; it
imports only the data layer, so the command line and the app (which both open the demo) can
use it.

The shipped checkpoint is looked for, in order:

1. ``$REIDVIEWER_CHECKPOINT`` (a file of your own as the default);
2. ``reidviewer/checkpoints/`` inside the installed package (wheels, sdists, editable
   installs and clones alike: the files are package data).
"""
from __future__ import annotations

import os
from pathlib import Path

from reidviewer.errors import CheckpointError

#: Size and seed of the demo dataset generated on first launch.
DEMO_IDS = 150
DEMO_SEED = 0
#: The shipped checkpoint's file name and its folder inside the package.
SHIPPED_CHECKPOINT = "synthwalk-ran-k3.safetensors"
CHECKPOINT_DIR = Path(__file__).resolve().parent / "checkpoints"
#: Environment variable naming another default checkpoint.
CHECKPOINT_ENV = "REIDVIEWER_CHECKPOINT"


def default_checkpoint() -> Path:
    """The checkpoint used when none is given.

    Raises:
        CheckpointError: naming every place looked in, when none holds it.
    """
    env = os.environ.get(CHECKPOINT_ENV)
    if env:
        path = Path(env).expanduser()
        if not path.is_file():
            raise CheckpointError(path, f"${CHECKPOINT_ENV} names this default checkpoint, but there is no such file")
        return path
    path = CHECKPOINT_DIR / SHIPPED_CHECKPOINT
    if not path.is_file():
        raise CheckpointError(path, "the shipped checkpoint is missing from this installation (looked in "
                                    f"${CHECKPOINT_ENV}, then {CHECKPOINT_DIR}); pass --checkpoint FILE "
                                    "or reinstall reidviewer")
    return path


def demo_dataset_dir(workspace) -> Path:
    """Where the SynthWalk demo lives in a workspace."""
    return workspace.datasets_dir / f"synthwalk-{DEMO_IDS}-seed{DEMO_SEED}"


def demo_is_ready(workspace) -> bool:
    """Whether the demo set has been generated in this workspace."""
    from reidviewer.data.synthwalk import is_complete

    return is_complete(demo_dataset_dir(workspace))


def ensure_demo(workspace, progress=None) -> Path:
    """Generate the SynthWalk demo into the workspace once; return its folder."""
    from reidviewer.data.synthwalk import SynthConfig, generate, is_complete

    out = demo_dataset_dir(workspace)
    if not is_complete(out):
        generate(out, SynthConfig(ids=DEMO_IDS, seed=DEMO_SEED), progress=progress, overwrite=True)
    return out
