"""The RAN network (docs/method.md §3), its baselines, losses (§d), checkpoints and fast inference.

Names are loaded on first use, so ``reidviewer.model.config`` (ModelConfig) can be imported
without torch; any other name imports torch.

Typical use::

    from reidviewer.model import ModelConfig, build_model, extract_features, load_checkpoint

    model = build_model(ModelConfig(num_classes=150))           # RAN, K = 3
    out = model(frames, mask)          # frames (B, T, 5, 56, 40) → out.feature (B, 128),
                                       # out.attention (B, K+1, T)
    emb = extract_features(model, [t1, t2, ...])   # many tracklets, fast, eval mode
"""
from __future__ import annotations

from importlib import import_module
from typing import Any

# name -> submodule that defines it (lazy, PEP 562)
_EXPORTS = {
    "checkpoint_paths": "checkpoint_files",
    "load_checkpoint": "checkpoint",
    "read_checkpoint_meta": "checkpoint",
    "save_checkpoint": "checkpoint",
    "FrameCNN": "cnn",
    "spec_reference_trunk": "cnn",
    "ModelConfig": "config",
    "HEADS": "heads",
    "TemporalHead": "heads",
    "register_head": "heads",
    "TrackletFeatures": "inference",
    "embed_frames": "inference",
    "extract_features": "inference",
    "LossConfig": "losses",
    "LossTerms": "losses",
    "contrastive_loss": "losses",
    "identity_loss": "losses",
    "pair_distance": "losses",
    "pair_loss": "losses",
    "similarity_loss": "losses",
    "ModelOutput": "network",
    "VideoReIDNet": "network",
    "build_model": "network",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(import_module(f"reidviewer.model.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'reidviewer.model' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
