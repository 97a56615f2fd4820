"""reidviewer: video-based person re-identification with Refined Attention Networks.

The package is layered (see docs/architecture.md): ``data`` (datasets, frames, preprocessing),
``model`` (the RAN network, losses, checkpoints), ``engine`` (training, evaluation,
results), ``annotations``, ``figures`` and the Qt ``app``. Only ``app`` imports Qt, and
importing this package does not import torch: heavy modules load on first use.
"""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["__version__", "open_dataset", "evaluate_rank", "results_from_arrays", "register_model"]


def __getattr__(name: str) -> Any:
    # Lazy re-exports keep `import reidviewer` cheap (no torch, no scipy) for the CLI and app start-up.
    if name == "open_dataset":
        from reidviewer.data.registry import open_dataset

        return open_dataset
    if name == "evaluate_rank":
        from reidviewer.engine.metrics import evaluate_rank

        return evaluate_rank
    if name == "results_from_arrays":
        from reidviewer.engine.importer import results_from_arrays

        return results_from_arrays
    if name == "register_model":
        from reidviewer.model.plugins import register_model

        return register_model
    raise AttributeError(f"module 'reidviewer' has no attribute {name!r}")
