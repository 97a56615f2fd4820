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
from reidviewer.model.checkpoint_files import WEIGHTS_SUFFIX, checkpoint_paths  # noqa: F401 (re-exported)
from reidviewer.model.config import ModelConfig
from reidviewer.model.heads import HEADS
from reidviewer.model.network import VideoReIDNet, build_model
from reidviewer.workspace import atomic_write_json, atomic_write_with

FORMAT = "reidviewer-checkpoint"
FORMAT_VERSION = 1
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


#: safetensors dtype names and their sizes in bytes.
_DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}
#: torch dtype name (as the JSON sidecar writes it) → safetensors dtype name.
_TORCH_TO_ST = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16", "int64": "I64",
                "int32": "I32", "int16": "I16", "int8": "I8", "uint8": "U8", "bool": "BOOL"}
_ST_TO_TORCH = {v: k for k, v in _TORCH_TO_ST.items()}


def _looks_like_pickle(head: bytes) -> bool:
    """Whether ``head`` starts a pickle stream: its opcodes parse (``pickletools`` only reads
    them, it never executes anything) for a good stretch without an error."""
    import io
    import pickletools

    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return True  # PROTO 2..5: every modern pickle, torch.save's legacy format included
    try:
        for count, _ in enumerate(pickletools.genops(io.BytesIO(head)), 1):
            if count >= 8:
                return True
    except Exception:  # noqa: BLE001 - not a pickle, or one cut short by our read
        return False
    return False


def read_safetensors_header(path: str | Path) -> dict[str, dict[str, Any]]:
    """Validate a safetensors file's structure and return its tensor table, without reading data.

    Checks, before anything else reads the file: it is a regular file (a FIFO or device would
    block or never end), its 8-byte little-endian header length lies within the file, the
    header is a JSON object, and every tensor has a known dtype, a shape of whole numbers and
    data offsets inside the data area whose size matches dtype × shape. Pickles and
    ``torch.save`` zips are recognised for what they are and refused.

    Returns:
        name → ``{"dtype": "F32", "shape": [...], "data_offsets": [begin, end]}``.

    Raises:
        CheckpointError: naming the file and what is wrong with it.
    """
    import stat

    path = Path(path)
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            raise CheckpointError(path, "is not a regular file (a FIFO, device or socket); refusing to read it")
        with open(path, "rb") as fh:
            head = fh.read(64 * 1024)
    except CheckpointError:
        raise
    except FileNotFoundError:
        raise CheckpointError(path, "checkpoint weights file not found") from None
    except OSError as exc:
        raise CheckpointError(path, f"cannot read checkpoint weights: {exc.strerror or exc}") from None
    size = st.st_size
    if head[:2] == b"PK":
        raise CheckpointError(
            path, "is a zip archive (a torch.save file), not safetensors; refusing to load it (unpickling can run code)")
    if len(head) < 10:
        raise CheckpointError(path, f"is too short ({size} bytes) to be a safetensors file")
    (n,) = struct.unpack("<Q", head[:8])
    bad_header = not (2 <= n <= min(_MAX_HEADER, size - 8))
    doc = None
    if not bad_header:
        try:
            with open(path, "rb") as fh:
                fh.seek(8)
                doc = json.loads(fh.read(n).decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError):
            bad_header = True
    if bad_header or not isinstance(doc, dict):
        if _looks_like_pickle(head):
            raise CheckpointError(path, "is a Python pickle, not safetensors; refusing to load it "
                                        "(unpickling can run code)")
        if bad_header and len(head) >= 8 and n > size - 8:
            raise CheckpointError(path, f"is not a safetensors file, or is truncated: its header claims {n:,} "
                                        f"bytes but the file has {size:,}")
        raise CheckpointError(path, "is not a safetensors file (the header is not a JSON object)")
    data_size = size - 8 - n
    table: dict[str, dict[str, Any]] = {}
    ends = []
    for name, entry in doc.items():
        if name == "__metadata__":
            continue
        ok = (isinstance(entry, dict) and entry.get("dtype") in _DTYPE_SIZES
              and isinstance(entry.get("shape"), list)
              and all(isinstance(d, int) and not isinstance(d, bool) and 0 <= d < 2**40 for d in entry["shape"])
              and isinstance(entry.get("data_offsets"), list) and len(entry["data_offsets"]) == 2
              and all(isinstance(o, int) and not isinstance(o, bool) for o in entry["data_offsets"]))
        if not ok:
            raise CheckpointError(path, f"safetensors header entry {name!r} is malformed")
        begin, end = entry["data_offsets"]
        count = 1
        for d in entry["shape"]:
            count *= d
        if not 0 <= begin <= end <= data_size or end - begin != count * _DTYPE_SIZES[entry["dtype"]]:
            raise CheckpointError(path, f"tensor {name!r} lies outside the file or does not match its shape "
                                        f"{entry['shape']} and dtype {entry['dtype']} (truncated file?)")
        ends.append(end)
        table[name] = entry
    return table


def check_safetensors_file(path: str | Path, expected: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """``read_safetensors_header``, and (with ``expected``: a sidecar's ``"tensors"``) check that
    the names, shapes and dtypes are the ones the sidecar lists.

    Raises:
        CheckpointError: naming the file and the tensors that differ.
    """
    table = read_safetensors_header(path)
    if expected is not None:
        if not isinstance(expected, dict):
            raise CheckpointError(path, "the metadata's \"tensors\" is not a table of tensors")
        problems = []
        for name in sorted(set(expected) | set(table)):
            want, have = expected.get(name), table.get(name)
            if want is None:
                problems.append(f"{name} is in the weights but not in the metadata")
            elif have is None:
                problems.append(f"{name} is in the metadata but not in the weights")
            elif not isinstance(want, dict) or list(want.get("shape", [])) != have["shape"] or \
                    _TORCH_TO_ST.get(str(want.get("dtype"))) != have["dtype"]:
                problems.append(f"{name}: the metadata says {want}, the weights hold {have['dtype']} {have['shape']}")
        if problems:
            raise CheckpointError(path, "weights and metadata disagree: " + "; ".join(problems[:5])
                                  + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""))
    return table


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
    if not weights.exists():
        raise CheckpointError(weights, "checkpoint weights file not found")
    header = read_safetensors_header(weights)
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
    # The architecture's tensors, from a model built on the "meta" device (shapes only, no
    # memory), against the header: a mismatch is named before any weight is read or allocated.
    with torch.device("meta"):
        expected = build_model(config).state_dict()
    problems = []
    missing = sorted(set(expected) - set(header))
    unexpected = sorted(set(header) - set(expected))
    if missing:
        problems.append("missing tensors: " + ", ".join(f"{k} {list(expected[k].shape)}" for k in missing))
    if unexpected:
        problems.append("unexpected tensors: " + ", ".join(f"{k} {header[k]['shape']}" for k in unexpected))
    wrong = [
        f"{k}: expected {list(expected[k].shape)} {str(expected[k].dtype).removeprefix('torch.')}, "
        f"found {header[k]['shape']} {_ST_TO_TORCH.get(header[k]['dtype'], header[k]['dtype'])}"
        for k in sorted(set(expected) & set(header))
        if header[k]["shape"] != list(expected[k].shape)
        or _TORCH_TO_ST.get(str(expected[k].dtype).removeprefix("torch.")) != header[k]["dtype"]
    ]
    if wrong:
        problems.append("tensors of the wrong shape/dtype: " + "; ".join(wrong))
    if problems:
        raise CheckpointError(
            weights, f"does not fit the architecture its metadata names (head {config.head!r}): " + " | ".join(problems)
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
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(weights, "non-finite (NaN/Inf) values in tensors: " + ", ".join(sorted(bad)))
    model.to(map_location)
    model.load_state_dict(tensors, strict=True)
    model.eval()
    return model, config, doc
