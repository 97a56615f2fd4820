"""Where a checkpoint's two files are, without importing torch.

A viewer that only reads a cached results file needs the checkpoint's path and fingerprint,
never its weights: keeping these names out of ``checkpoint`` (which imports torch, about a
second) keeps a cached launch fast.
"""
from __future__ import annotations

from pathlib import Path

WEIGHTS_SUFFIX = ".safetensors"


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, metadata)`` paths of the checkpoint ``path`` names (either file, or the stem)."""
    p = Path(path)
    if p.suffix in (WEIGHTS_SUFFIX, ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + WEIGHTS_SUFFIX), p.with_name(p.name + ".json")
