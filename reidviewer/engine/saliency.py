"""Per-frame spatial saliency of the frame CNN: *where* the model looks, beside *when* (attention).

Two methods (docs/saliency.md):

``gradcam`` (the default)
    Grad-CAM (Selvaraju et al. 2017) on the last conv stage of the frame CNN, with respect to
    the query–gallery Euclidean distance of the pair in view: the target is −d(f_q, f_g), so a
    map shows what made *these two* close. For each frame, channel weights are the spatial mean
    of ∂(−d)/∂A_c and the map is ReLU(Σ_c w_c A_c). The gradient flows through the temporal
    head (attention included), so a frame the attention ignores gets a weak map.
``energy``
    Target-free activation energy (as torchreid's image activation maps): Σ_c A_c² per frame.

Both are computed at the last stage's resolution (10×8 for the paper trunk), upsampled
bilinearly to the network's input crop (56×40), and normalised per tracklet to [0, 1] (one
scale for all frames of a tracklet, so a weak frame stays weak). ``SaliencyMaps.frame_map``
places a map back into the frame: the crop of ``test_transform`` starts at (4, 4) of the
stored 64×48 frame, which is a plain resize of the full frame; outside the crop the map is 0.

Maps are cached in ``<workspace>/cache/saliency/<checkpoint fp>/`` per (dataset, tracklet,
target, method, clip) as ``.npz`` (written atomically, read with ``allow_pickle=False``).

Models without gradients (plugins, imported results: ``model:`` references) have no maps;
``saliency_unavailable`` says why.
"""
from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from reidviewer.data.array_files import DAMAGED_FILE_ERRORS, open_npz
from reidviewer.errors import ReidViewerError
from reidviewer.progress import ProgressFn, check_cancelled

METHODS = ("gradcam", "energy")
#: Grad-CAM w.r.t. the pair's distance: it answers the question the viewer asks ("why are these
#: two close?"), and it is pair-specific, unlike the energy map (docs/saliency.md).
DEFAULT_METHOD = "gradcam"
#: The target of a target-free map (``energy``).
NO_TARGET = "-"
_FORMAT = 1


class SaliencyError(ReidViewerError):
    """Saliency cannot be computed (a model without gradients, a bad method)."""


def _noop(*_a, **_k) -> None:
    return None


# --------------------------------------------------------------------------------------------
# The network split at its last conv stage.


class StageModel(Protocol):
    """A video model cut at the last conv stage: what Grad-CAM needs."""

    def activations(self, frames: Any) -> Any:
        """(N, C, H, W) frames → (N, C', h, w) activations of the last conv stage."""

    def video_feature(self, activations: Any) -> Any:
        """(T, C', h, w) activations of one tracklet's frames → (D,) video feature."""


class NetStages:
    """``VideoReIDNet`` as a ``StageModel``: FrameCNN.forward up to the last stage's activation,
    then the flatten/average, the frame FC layers and the temporal head."""

    def __init__(self, model: Any) -> None:
        self.model = model

    def activations(self, frames: Any) -> Any:
        """As ``FrameCNN.forward`` up to the flatten; channels_last chunks of 128 frames when no
        graph is recorded (oneDNN's fast path, as ``model.inference.embed_frames``)."""
        import torch

        cnn = self.model.cnn
        cnn.check_input(frames)
        if torch.is_grad_enabled():
            return self._stages(frames)
        chunks = [self._stages(frames[i:i + 128].contiguous(memory_format=torch.channels_last))
                  for i in range(0, frames.shape[0], 128)]
        return torch.cat(chunks).contiguous()

    def _stages(self, x: Any) -> Any:
        import torch

        cnn = self.model.cnn
        for i, conv in enumerate(cnn.convs):
            x = conv(x)
            if cnn.norms is not None:
                x = cnn.norms[i](x)
            x = cnn.activation(torch.nn.functional.max_pool2d(x, 2, 2))
        return x

    def video_feature(self, activations: Any) -> Any:
        cnn = self.model.cnn
        flat = activations.mean((2, 3)) if cnn.pool == "avg" else activations.flatten(1)
        x = self.model.head.embed(flat)
        return self.model.pool(x.unsqueeze(0)).feature[0]


def cam_from(activations: Any, gradients: Any) -> Any:
    """Grad-CAM maps (N, h, w) from activations and gradients (N, C, h, w): ReLU(Σ_c mean(∂)_c A_c)."""
    weights = gradients.mean((2, 3), keepdim=True)
    return (weights * activations).sum(1).clamp_min(0)


def energy_from(activations: Any) -> Any:
    """Activation energy (N, h, w): Σ_c A_c²."""
    return (activations * activations).sum(1)


def _upsample(maps: Any, size: tuple[int, int]) -> np.ndarray:
    import torch

    up = torch.nn.functional.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    return up.detach().cpu().numpy().astype(np.float32)


#: Overlay alpha = opacity × map ** ALPHA_GAMMA: transparent where the map is 0, so the overlay
#: never hides what it explains; the square root keeps the weaker half of a peaky map visible.
ALPHA_GAMMA = 0.5


def overlay_alpha(m: np.ndarray, opacity: float) -> np.ndarray:
    """Alpha in [0, 1] of an overlay of map ``m`` (values in [0, 1]) at ``opacity``."""
    return float(np.clip(opacity, 0, 1)) * np.clip(np.nan_to_num(m), 0, 1) ** ALPHA_GAMMA


def normalise(maps: np.ndarray) -> np.ndarray:
    """Scale a tracklet's maps to [0, 1] by their common maximum (all-zero stays zero)."""
    maps = np.clip(np.nan_to_num(np.asarray(maps, dtype=np.float32)), 0, None)
    top = float(maps.max()) if maps.size else 0.0
    return maps / top if top > 0 else maps


def pair_gradcam(stages: StageModel, query: Any, gallery: Any) -> tuple[np.ndarray, np.ndarray, float]:
    """Grad-CAM of both tracklets of a pair w.r.t. −‖f_q − f_g‖, at the input's resolution.

    Args:
        stages: the model cut at its last conv stage.
        query, gallery: network input (T, C, H, W) float tensors.

    Returns:
        ``(query maps (Tq, H, W), gallery maps (Tg, H, W), distance)``, each tracklet's maps
        normalised to [0, 1].
    """
    import torch

    size = tuple(query.shape[-2:])
    # The gradient is wanted w.r.t. the activations only: the conv stages run without a graph.
    with torch.no_grad():
        aq = stages.activations(query).detach().requires_grad_(True)
        ag = stages.activations(gallery).detach().requires_grad_(True)
    with torch.enable_grad():
        d = torch.linalg.vector_norm(stages.video_feature(aq) - stages.video_feature(ag))
        gq, gg = torch.autograd.grad(-d, [aq, ag], allow_unused=True)
    gq = torch.zeros_like(aq) if gq is None else gq
    gg = torch.zeros_like(ag) if gg is None else gg
    with torch.no_grad():
        mq = normalise(_upsample(cam_from(aq.detach(), gq), size))
        mg = normalise(_upsample(cam_from(ag.detach(), gg), size))
    return mq, mg, float(d.detach())


def tracklet_energy(stages: StageModel, frames: Any) -> np.ndarray:
    """Activation-energy maps (T, H, W) of one tracklet, normalised to [0, 1]."""
    import torch

    with torch.no_grad():
        return normalise(_upsample(energy_from(stages.activations(frames)), tuple(frames.shape[-2:])))


# --------------------------------------------------------------------------------------------
# Maps of a tracklet, placed back into its frames.


@dataclass
class SaliencyMaps:
    """One tracklet's saliency.

    Attributes:
        maps: (T, h, w) float32 in [0, 1] at the network's input crop (56×40).
        frames: (T,) frame numbers (0-based in the tracklet) the maps belong to (the test clip).
        stored_size: (rows, cols) of the stored frame the crop was cut from (64×48).
        offset: (row, col) of the crop in the stored frame (4, 4).
        method: ``gradcam`` or ``energy``; target: the other tracklet's key (``-`` for energy).
        distance: the pair's distance for ``gradcam`` (NaN for energy).
    """

    maps: np.ndarray
    frames: np.ndarray
    stored_size: tuple[int, int]
    offset: tuple[int, int]
    method: str
    target: str
    distance: float = float("nan")

    def index_of(self, frame: int) -> int | None:
        """Row of ``maps`` for tracklet frame ``frame``, or None when the clip leaves it out."""
        pos = int(frame) - int(self.frames[0]) if len(self.frames) else -1
        if 0 <= pos < len(self.frames) and int(self.frames[pos]) == int(frame):
            return pos
        hit = np.flatnonzero(self.frames == int(frame))
        return int(hit[0]) if hit.size else None

    def stored_map(self, row: int) -> np.ndarray:
        """Map ``row`` placed into the stored frame (zeros outside the crop)."""
        h, w = self.stored_size
        out = np.zeros((h, w), np.float32)
        m = self.maps[row]
        y, x = self.offset
        out[y:y + m.shape[0], x:x + m.shape[1]] = m
        return out

    def frame_map(self, frame: int, height: int, width: int, per_frame: bool = False) -> np.ndarray | None:
        """Map of tracklet frame ``frame`` at the frame's full size (height×width), or None.

        ``per_frame`` stretches the frame's map to its own maximum (a display option: the stored
        maps share one scale per tracklet, so a frame the model ignores stays faint).
        """
        row = self.index_of(frame)
        if row is None:
            return None
        import cv2

        m = cv2.resize(self.stored_map(row), (int(width), int(height)), interpolation=cv2.INTER_LINEAR)
        if per_frame:
            top = float(self.maps[row].max())
            m = m / top if top > 0 else m
        return np.clip(m, 0.0, 1.0)

    def save(self, path: str | Path) -> None:
        from reidviewer.workspace import atomic_open

        meta = {"format": _FORMAT, "method": self.method, "target": self.target, "distance": self.distance,
                "stored_size": list(self.stored_size), "offset": list(self.offset)}
        with atomic_open(path, "wb", durable=False) as fh:
            np.savez_compressed(fh, maps=(self.maps * 65535 + 0.5).astype(np.uint16),
                                frames=self.frames.astype(np.int64), meta=np.array(json.dumps(meta)))

    @classmethod
    def load(cls, path: str | Path) -> SaliencyMaps:
        with open_npz(path) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != _FORMAT:
                raise ValueError("unknown saliency file format")
            return cls(maps=z["maps"].astype(np.float32) / 65535, frames=z["frames"].astype(np.int64),
                       stored_size=tuple(meta["stored_size"]), offset=tuple(meta["offset"]),
                       method=meta["method"], target=meta["target"], distance=float(meta["distance"]))


# --------------------------------------------------------------------------------------------
# The workspace cache and the entry point.


def saliency_unavailable(checkpoint: Any) -> str | None:
    """Why a checkpoint reference has no saliency (None when it has)."""
    from reidviewer.engine.models import model_spec_of

    if checkpoint is None or str(checkpoint) == "":
        return "no checkpoint: the results do not name the network they came from"
    spec = model_spec_of(checkpoint)
    if spec is not None:
        return f"model {spec.split(':')[0]!r} exposes no gradients (a plugin or imported results)"
    return None


def cache_path(workspace: Any, checkpoint_fp: str, dataset_fp: str, key: str, target: str, method: str,
               clip: tuple[int, bool]) -> Path:
    """``<workspace>/cache/saliency/<checkpoint fp[:16]>/<hash>-<method>.npz``."""
    text = json.dumps([dataset_fp, key, target, method, list(clip)])
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]
    return Path(workspace.cache_dir) / "saliency" / (checkpoint_fp[:16] or "unknown") / f"{digest}-{method}.npz"


class SaliencyEngine:
    """Saliency of a results file's pairs: loads its checkpoint once, caches maps in the workspace.

    Args:
        dataset: the dataset the results were computed on.
        results: a ``Results`` (its settings name the checkpoint, clip length and gallery tail).
        workspace: a ``Workspace``.
        checkpoint: the checkpoint to use instead of the one the results name.
        model: an already built ``VideoReIDNet`` (with ``preprocess``), instead of loading one.
    """

    def __init__(self, dataset: Any, results: Any, workspace: Any, checkpoint: Any = None,
                 model: Any = None, preprocess: Any = None) -> None:
        self.dataset = dataset
        self.results = results
        self.workspace = workspace
        settings = getattr(results, "settings", {}) or {}
        self.checkpoint = checkpoint if checkpoint is not None else settings.get("checkpoint")
        self.max_frames = int(settings.get("max_frames", 128) or 128)
        self.gallery_tail = bool(settings.get("gallery_tail", False))
        self.checkpoint_fp = getattr(results, "checkpoint_fingerprint", "") or ""
        self._model = model
        self._preprocess = preprocess
        self._cache = None
        self._lock = threading.Lock()
        self.reads = 0  # maps read from the cache (tests, bench)
        self._tail: frozenset[int] | None = None

    @property
    def unavailable(self) -> str | None:
        if self._model is not None:
            return None
        reason = saliency_unavailable(self.checkpoint)
        if reason is None and not Path(str(self.checkpoint)).exists() and not Path(f"{self.checkpoint}").with_suffix(
                ".safetensors").exists():
            return f"the checkpoint {self.checkpoint} is not there"
        return reason

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._model is None:
                reason = self.unavailable
                if reason:
                    raise SaliencyError(reason)
                from reidviewer.engine.evaluate import file_fingerprint, preprocess_config_of
                from reidviewer.model.checkpoint import load_checkpoint
                from reidviewer.model.checkpoint_files import checkpoint_paths

                weights = checkpoint_paths(Path(str(self.checkpoint)))[0]
                if self.checkpoint_fp and file_fingerprint(weights) != self.checkpoint_fp:
                    raise SaliencyError(f"the checkpoint {weights} changed since these results were computed; "
                                        "open it again to evaluate it first")
                model, _config, meta = load_checkpoint(self.checkpoint, map_location="cpu")
                self._model = model.eval()
                self._preprocess = preprocess_config_of(meta)
            if self._cache is None:
                from reidviewer.data.cache import FrameCache
                from reidviewer.data.preprocess import PreprocessConfig

                self._cache = FrameCache(self.workspace, self.dataset, self._preprocess or PreprocessConfig())
            return self._model, self._cache

    def _is_tail(self, index: int) -> bool:
        """Whether tracklet ``index`` was evaluated on its last frames: as ``evaluate.extract``,
        every gallery tracklet (also when it is a query too, as in MARS) when the results used
        ``gallery_tail``."""
        if not self.gallery_tail:
            return False
        if self._tail is None:
            self._tail = frozenset(int(i) for i in self.results.gallery_indices)
        return int(index) in self._tail

    def clip(self, index: int, tail: bool | None = None) -> tuple[np.ndarray, Any]:
        """(frame numbers, network input tensor (T, 5, 56, 40)) of tracklet ``index``'s test clip."""
        from reidviewer.data.network_batch import network_batch
        from reidviewer.data.transforms import sample_test_clip

        _model, cache = self._load()
        tail = self._is_tail(index) if tail is None else tail
        sel = sample_test_clip(len(self.dataset.tracklets[int(index)]), self.max_frames, tail)
        # The input evaluation computes (the same fused preprocessing), as plain NCHW for the gradients.
        seq = network_batch(cache.read(int(index), slice(int(sel[0]), int(sel[-1]) + 1)), cache.config)
        return sel, seq.contiguous()

    def _path(self, index: int, target: str, method: str, tail: bool) -> Path:
        key = self.dataset.tracklets[int(index)].key
        return cache_path(self.workspace, self.checkpoint_fp, self.dataset.fingerprint, key, target, method,
                          (self.max_frames, tail))

    def _read(self, path: Path) -> SaliencyMaps | None:
        if not path.is_file():
            return None
        try:
            maps = SaliencyMaps.load(path)
        except (*DAMAGED_FILE_ERRORS, TypeError):
            return None  # a damaged cache file is recomputed
        self.reads += 1
        return maps

    def _stored_geometry(self, cache: Any) -> tuple[tuple[int, int], tuple[int, int]]:
        from reidviewer.data.transforms import TEST_OFFSET

        return (int(cache.config.height), int(cache.config.width)), (TEST_OFFSET, TEST_OFFSET)

    def pair(self, query_index: int, gallery_index: int, method: str = DEFAULT_METHOD,
             progress: ProgressFn = _noop, cancel: threading.Event | None = None) -> tuple[SaliencyMaps, SaliencyMaps]:
        """Maps of a query and a gallery tracklet (dataset indices), from the cache or computed."""
        if method not in METHODS:
            raise SaliencyError(f"unknown saliency method {method!r} (known: {', '.join(METHODS)})")
        tr = self.dataset.tracklets
        qtail, gtail = self._is_tail(query_index), self._is_tail(gallery_index)
        if method == "energy":
            return (self.tracklet(query_index, qtail, progress, cancel), self.tracklet(gallery_index, gtail,
                                                                                     progress, cancel))
        qpath = self._path(query_index, tr[int(gallery_index)].key, method, qtail)
        gpath = self._path(gallery_index, tr[int(query_index)].key, method, gtail)
        q, g = self._read(qpath), self._read(gpath)
        if q is not None and g is not None:
            progress(1, 1, "saliency read from the workspace")
            return q, g
        check_cancelled(cancel)
        progress(0, 2, "reading frames")
        model, cache = self._load()
        qsel, qin = self.clip(query_index, qtail)
        gsel, gin = self.clip(gallery_index, gtail)
        check_cancelled(cancel)
        progress(1, 2, "Grad-CAM")
        mq, mg, d = pair_gradcam(NetStages(model), qin, gin)
        size, offset = self._stored_geometry(cache)
        q = SaliencyMaps(mq, qsel, size, offset, method, tr[int(gallery_index)].key, d)
        g = SaliencyMaps(mg, gsel, size, offset, method, tr[int(query_index)].key, d)
        q.save(qpath)
        g.save(gpath)
        progress(2, 2, "saliency computed")
        return q, g

    def tracklet(self, index: int, tail: bool | None = None, progress: ProgressFn = _noop,
                 cancel: threading.Event | None = None) -> SaliencyMaps:
        """Activation-energy maps of one tracklet (target-free), from the cache or computed."""
        tail = self._is_tail(index) if tail is None else tail
        path = self._path(index, NO_TARGET, "energy", tail)
        got = self._read(path)
        if got is not None:
            return got
        check_cancelled(cancel)
        model, cache = self._load()
        sel, inp = self.clip(index, tail)
        size, offset = self._stored_geometry(cache)
        maps = SaliencyMaps(tracklet_energy(NetStages(model), inp), sel, size, offset, "energy", NO_TARGET)
        maps.save(path)
        return maps


def randomised_copy(model: Any, seed: int = 0) -> Any:
    """The same network with every weight re-drawn (Adebayo et al. 2018's cascading check, all layers)."""
    import copy

    import torch

    from reidviewer.model.network import init_weights

    clone = copy.deepcopy(model)
    gen = torch.random.fork_rng()
    with gen:
        torch.manual_seed(seed)
        for m in clone.modules():
            if hasattr(m, "reset_parameters") and m is not clone:
                m.reset_parameters()
        init_weights(clone, "he")
    return clone.eval()


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation of two maps (flattened); NaN when one is constant."""
    from reidviewer.engine.audit import average_ranks

    ra, rb = average_ranks(np.ravel(a).astype(np.float64)), average_ranks(np.ravel(b).astype(np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else float("nan")
