"""Checkpoints: weights in safetensors, metadata in a JSON file beside them.

Convention: ``NAME.safetensors`` holds the tensors and ``NAME.json`` (same folder, same stem)
holds the metadata. Either path may be given to ``load_checkpoint``.

The JSON document::

    {
      "format": "reidviewer-checkpoint", "format_version": 1,
      "reidviewer_version": "0.1.0", "created": "2025-01-01T12:00:00+00:00",
      "weights_file": "NAME.safetensors", "weights_sha256": "…",
      "architecture": {...ModelConfig.to_dict()...},
      "tensors": {"cnn.convs.0.weight": {"shape": [16, 5, 5, 5], "dtype": "float32"}, ...},
      "num_parameters": 2794528,
      ...caller's meta keys: "training", "dataset", "split", "metrics", ...
    }

Loading never unpickles: the weights are read with ``safetensors.torch.load_file`` only, so a
checkpoint from a stranger cannot run code. A file that is not safetensors (a pickle or a
``torch.save`` zip renamed ``.safetensors``) is refused before anything is parsed.
"""
from __future__ import annotations

import hashlib
import json
import struct
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from reidviewer.errors import CheckpointError
from reidviewer.model.config import ModelConfig
from reidviewer.model.heads import HEADS
from reidviewer.model.network import VideoReIDNet, build_model
from reidviewer.workspace import atomic_write_json, atomic_write_with

FORMAT = "reidviewer-checkpoint"
FORMAT_VERSION = 1
WEIGHTS_SUFFIX = ".safetensors"
#: Keys of the JSON document that ``save_checkpoint`` writes itself; ``meta`` may not use them.
RESERVED_KEYS = (
    "format",
    "format_version",
    "reidviewer_version",
    "created",
    "weights_file",
    "weights_sha256",
    "architecture",
    "tensors",
    "num_parameters",
)
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


def checkpoint_paths(path: str | Path) -> tuple[Path, Path]:
    """``(weights, metadata)`` paths of the checkpoint ``path`` names (either file, or the stem)."""
    p = Path(path)
    if p.suffix in (WEIGHTS_SUFFIX, ".json"):
        p = p.with_suffix("")
    return p.with_name(p.name + WEIGHTS_SUFFIX), p.with_name(p.name + ".json")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _json_safe(obj: Any, where: str) -> Any:
    try:
        return json.loads(json.dumps(obj, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint {where} is not JSON-serialisable: {exc}") from exc


def save_checkpoint(
    path: str | Path, model: VideoReIDNet, config: ModelConfig | None = None, meta: dict[str, Any] | None = None
) -> Path:
    """Write ``NAME.safetensors`` and ``NAME.json`` atomically.

    Args:
        path: ``NAME``, ``NAME.safetensors`` or ``NAME.json``; the folder is created.
        model: the network (its state dict is saved as float tensors, contiguous).
        config: its architecture (default ``model.config``).
        meta: extra JSON-safe metadata: training settings, dataset and split, metrics, ...
            (keys must not collide with ``RESERVED_KEYS``).

    Returns:
        The path of the weights file.
    """
    from reidviewer import __version__

    config = config or model.config
    if config != model.config:
        raise ValueError("the config given to save_checkpoint differs from model.config; the weights would not fit it")
    meta = _json_safe(dict(meta or {}), "meta")
    clash = sorted(set(meta) & set(RESERVED_KEYS))
    if clash:
        raise ValueError(f"meta keys {clash} are reserved for the checkpoint format")
    weights, meta_path = checkpoint_paths(path)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    digest: dict[str, str] = {}

    def write(tmp: Path) -> None:
        from safetensors.torch import save_file

        save_file(tensors, str(tmp), metadata={"format": "pt", "reidviewer": FORMAT})
        digest["sha256"] = _sha256(tmp)

    atomic_write_with(weights, write)
    doc: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "reidviewer_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "weights_file": weights.name,
        "weights_sha256": digest["sha256"],
        "architecture": config.to_dict(),
        "tensors": {k: {"shape": list(v.shape), "dtype": str(v.dtype).removeprefix("torch.")} for k, v in tensors.items()},
        "num_parameters": int(sum(p.numel() for p in model.parameters())),
    }
    doc.update(meta)
    atomic_write_json(meta_path, doc)
    return weights


def read_checkpoint_meta(path: str | Path) -> dict[str, Any]:
    """The JSON document of a checkpoint (cheap: no torch tensors are read).

    Raises:
        CheckpointError: the JSON is missing, unreadable or not a reidviewer checkpoint.
    """
    _, meta_path = checkpoint_paths(path)
    if not meta_path.is_file():
        raise CheckpointError(meta_path, "checkpoint metadata file is missing (expected beside the .safetensors file)")
    try:
        doc = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(meta_path, f"cannot read checkpoint metadata: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise CheckpointError(meta_path, f"not a reidviewer checkpoint metadata file (no \"format\": \"{FORMAT}\")")
    version = doc.get("format_version", 0)
    if not isinstance(version, int):
        raise CheckpointError(meta_path, f"format_version must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise CheckpointError(
            meta_path,
            f"checkpoint format version {doc.get('format_version')} is newer than this reidviewer supports "
            f"({FORMAT_VERSION}); upgrade reidviewer",
        )
    if "architecture" not in doc:
        raise CheckpointError(meta_path, "checkpoint metadata has no \"architecture\"")
    return doc


def _sniff_safetensors(weights: Path) -> None:
    """Refuse anything that is not a safetensors file before a parser sees it."""
    try:
        with open(weights, "rb") as fh:
            head = fh.read(9)
            size = weights.stat().st_size
    except OSError as exc:
        raise CheckpointError(weights, f"cannot read checkpoint weights: {exc}") from exc
    if head[:2] == b"PK":
        raise CheckpointError(
            weights, "is a zip archive (a torch.save file), not safetensors; refusing to load it (unpickling can run code)"
        )
    if head[:1] == b"\x80" or head[:1] in (b"(", b"}", b"]", b"c"):
        raise CheckpointError(weights, "is a Python pickle, not safetensors; refusing to load it (unpickling can run code)")
    if len(head) < 9:
        raise CheckpointError(weights, "is too short to be a safetensors file")
    (n,) = struct.unpack("<Q", head[:8])
    if n > min(_MAX_HEADER, size - 8) or head[8:9] != b"{":
        raise CheckpointError(weights, "is not a safetensors file (bad header)")


def load_checkpoint(
    path: str | Path, map_location: str | torch.device = "cpu"
) -> tuple[VideoReIDNet, ModelConfig, dict[str, Any]]:
    """Load a checkpoint written by ``save_checkpoint``, safely.

    Args:
        path: ``NAME``, ``NAME.safetensors`` or ``NAME.json``.
        map_location: device for the weights.

    Returns:
        ``(model, config, meta)``: the network in eval mode with the saved weights, its
        architecture, and the whole JSON document (caller's keys plus the reserved ones).

    Raises:
        CheckpointError: naming the file and what is wrong: missing file, not safetensors
            (e.g. a pickle), missing or invalid JSON, unknown architecture, tensors missing,
            unexpected or of the wrong shape/dtype (listed by name), non-finite weights.
    """
    given = Path(path)
    if given.is_file() and given.suffix not in (WEIGHTS_SUFFIX, ".json"):
        raise CheckpointError(given, f"not a checkpoint: expected NAME{WEIGHTS_SUFFIX} with NAME.json beside it")
    weights, meta_path = checkpoint_paths(path)
    if not weights.is_file():
        raise CheckpointError(weights, "checkpoint weights file not found")
    _sniff_safetensors(weights)
    doc = read_checkpoint_meta(weights)
    arch = doc["architecture"]
    try:
        config = ModelConfig.from_dict(arch)
    except ValueError as exc:
        raise CheckpointError(meta_path, f"invalid architecture: {exc}") from exc
    if config.head not in HEADS:
        raise CheckpointError(
            meta_path, f"unknown architecture: temporal head {config.head!r} (known: {', '.join(sorted(HEADS))})"
        )
    expected_sha = doc.get("weights_sha256")
    if expected_sha and _sha256(weights) != expected_sha:
        raise CheckpointError(
            weights, f"weights do not match {meta_path.name} (sha256 differs): the two files belong to different checkpoints"
        )
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(str(weights), device=str(map_location))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(weights, f"cannot read safetensors weights: {exc}") from exc

    model = build_model(config)
    expected = model.state_dict()
    problems = []
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        problems.append("missing tensors: " + ", ".join(f"{k} {list(expected[k].shape)}" for k in missing))
    if unexpected:
        problems.append("unexpected tensors: " + ", ".join(f"{k} {list(tensors[k].shape)}" for k in unexpected))
    wrong = [
        f"{k}: expected {list(expected[k].shape)} {str(expected[k].dtype).removeprefix('torch.')}, "
        f"found {list(tensors[k].shape)} {str(tensors[k].dtype).removeprefix('torch.')}"
        for k in sorted(set(expected) & set(tensors))
        if tensors[k].shape != expected[k].shape or tensors[k].dtype != expected[k].dtype
    ]
    if wrong:
        problems.append("tensors of the wrong shape/dtype: " + "; ".join(wrong))
    if problems:
        raise CheckpointError(
            weights, f"does not fit the architecture its metadata names (head {config.head!r}): " + " | ".join(problems)
        )
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(weights, "non-finite (NaN/Inf) values in tensors: " + ", ".join(sorted(bad)))
    model.to(map_location)
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model, config, doc
