"""Training: the paper's Siamese protocol or the fast recipe, resumable, budgeted and watched.

``train(config, workspace, progress, should_stop)`` is the one function the CLI, the app's
training worker and ``torchrun`` all call. It reports progress through a callback (at most
about 10 times a second), stops cooperatively when ``should_stop()`` turns true (leaving a
checkpoint), stops by itself at the time budget (``config.minutes``), watches the run's
health (``engine.health``) and writes everything into one run folder of the workspace:

    runs/<name>/config.json         the TrainConfig (every setting, resolved from the recipe)
    runs/<name>/metrics.jsonl       one JSON object per logged step / validation / health change
    runs/<name>/last.safetensors    the latest weights (+ .json metadata: a normal checkpoint)
    runs/<name>/state.safetensors   optimizer state and RNG states for --resume (+ state.json)
    runs/<name>/epoch_NNNN.safetensors  periodic checkpoints

Resuming restores the weights, the optimizer's state, every RNG (numpy's generators for
batches and clips, torch's for dropout) and the position inside the epoch, so a
stopped-and-resumed run on the CPU ends with the same weights as an uninterrupted one.
The recipes themselves (``paper``, ``fast``) are described in ``engine.recipes``.
"""
from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from reidviewer.data.dataset import VideoDataset
from reidviewer.engine.recipes import RECIPE_ONLY, SettingsError, TrainConfig  # noqa: F401 (re-exported)
from reidviewer.errors import ReidViewerError

__all__ = ["TrainConfig", "TrainProgress", "TrainOutcome", "TrainingError", "train", "resumed_config", "run_dir_for"]


class TrainingError(ReidViewerError):
    """Training cannot go on (NaN loss, out of memory, a bad frame, a full disk)."""


@dataclass
class TrainProgress:
    """One progress report.

    Attributes:
        epoch, epochs, step, steps_per_epoch, global_step, total_steps: where the run is.
        losses: the loss terms averaged since the last report (``total`` and the recipe's terms).
        lr: the current learning rate.
        tracklets_per_s: training tracklets per second (a Siamese pair is two).
        val_rank1, val_map: the last validation's R1 and mAP (None before the first).
        eta_s: seconds to the end (the budget's end under ``minutes``).
        attention_spread: standard deviation of the final attention over a clip's frames.
        health: warnings about the run (collapse, divergence, chance-level identity loss,
            uniform attention), each a sentence with what to try; empty when all is well.
        message: ``validation …``, ``stopped``, ``finished``, … on special reports.
        fraction: how much of the run is done (steps or budget, whichever is further).
    """

    epoch: int
    epochs: int
    step: int
    steps_per_epoch: int
    global_step: int
    total_steps: int
    losses: dict[str, float]
    lr: float
    tracklets_per_s: float
    val_rank1: float | None
    eta_s: float
    attention_spread: float | None = None
    message: str = ""
    val_map: float | None = None
    health: list[str] = field(default_factory=list)
    fraction: float = 0.0


@dataclass
class TrainOutcome:
    """How a run ended.

    Attributes:
        reason: ``finished`` (all epochs), ``budget`` (the time budget ran out; the schedule had
            ended too), ``stopped`` (asked to stop) or ``collapsed`` (the embedding collapsed;
            the checkpoint holds the weights from before).
    """

    run_dir: Path
    checkpoint: Path
    stopped: bool
    epochs_done: int
    global_step: int
    val_rank1: float | None
    val_map: float | None = None
    reason: str = "finished"


def run_dir_for(workspace, name: str) -> Path:
    """The run folder: a path if ``name`` looks like one, else ``workspace/runs/<name>``."""
    if name and (os.sep in name or name.startswith(".")):
        return Path(name).expanduser().resolve()
    if not name:
        name = time.strftime("run-%Y%m%d-%H%M%S")
    return workspace.runs_dir / name


def run_is_started(run_dir: Path) -> bool:
    """Whether ``run_dir`` holds a run (its settings or a checkpoint)."""
    return any((run_dir / f).exists() for f in ("config.json", "state.json", "last.safetensors"))


# ---------------------------------------------------------------------------- state files


def drop_metrics_after(path: Path, global_step: int) -> int:
    """Drop the records of a ``metrics.jsonl`` logged after ``global_step``; how many went.

    A run killed after its last checkpoint has logged steps the resumed run will log again;
    without this the log would repeat them. A line cut short by the kill is dropped too.
    """
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return 0
    kept = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("global_step"), int) and record["global_step"] > global_step:
            continue
        kept.append(line)
    dropped = len(lines) - len(kept)
    if dropped:
        from reidviewer.workspace import atomic_write_text

        atomic_write_text(path, "".join(line + "\n" for line in kept))
    return dropped


def _rng_state_json(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def _rng_from_json(state: dict) -> np.random.Generator:
    bg = np.random.PCG64()
    bg.state = state
    return np.random.Generator(bg)


def save_state(run_dir: Path, model, optimizer, cfg: TrainConfig, position: dict,
               rngs: dict[str, np.random.Generator], model_config, meta: dict) -> Path:
    """Write ``last.safetensors`` (+json) and ``state.safetensors`` (+json), atomically.

    Every tensor of the optimizer's state (SGD's momentum, Adam's moments and step) is saved
    under ``optim/<parameter name>/<key>``.
    """
    import torch
    from safetensors.torch import save_file

    from reidviewer.model.checkpoint import save_checkpoint
    from reidviewer.workspace import atomic_write_json, atomic_write_with

    ckpt = run_dir / "last.safetensors"
    save_checkpoint(ckpt, model, model_config, meta)
    tensors: dict[str, torch.Tensor] = {"torch_rng": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda_rng_{i}"] = s
    names = {id(p): n for n, p in model.named_parameters()}
    scalars: dict[str, float] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            for key, value in optimizer.state.get(p, {}).items():
                where = f"optim/{names[id(p)]}/{key}"
                if isinstance(value, torch.Tensor):
                    tensors[where] = value.detach().cpu().contiguous()
                else:
                    scalars[where] = float(value)
    atomic_write_with(run_dir / "state.safetensors", lambda tmp: save_file(tensors, str(tmp)))
    atomic_write_json(run_dir / "state.json", {"position": position,
                                               "rngs": {k: _rng_state_json(r) for k, r in rngs.items()},
                                               "optimizer_scalars": scalars,
                                               "config": cfg.to_dict()})
    return ckpt


def load_state(run_dir: Path, model, optimizer) -> tuple[dict, dict[str, np.random.Generator]]:
    """Restore what ``save_state`` wrote; returns (position, numpy generators by name).

    Raises:
        TrainingError: a missing, truncated or foreign state or checkpoint file, named.
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state_json = run_dir / "state.json"
    if not state_json.is_file():
        raise TrainingError(f"{run_dir}: nothing to resume (no state.json in the run folder)")
    try:
        meta = json.loads(state_json.read_text(encoding="utf-8"))
        position, rng_states = meta["position"], meta["rngs"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        raise TrainingError(f"{state_json}: unreadable resume state ({exc}); start a new run") from None
    for name in ("last.safetensors", "state.safetensors"):
        path = run_dir / name
        try:
            if name == "last.safetensors":
                from reidviewer.model.checkpoint import check_safetensors_file

                check_safetensors_file(path)
                weights = load_file(str(path))
            else:
                check_safetensors_file(path)
                tensors = load_file(str(path))
        except (SafetensorError, OSError, ValueError, RuntimeError, ReidViewerError) as exc:
            raise TrainingError(f"{path}: cannot resume from it ({exc}); it may be truncated. "
                                "Start a new run, or train from it with --init-from") from None
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise TrainingError(f"{run_dir / 'last.safetensors'}: does not fit this run's model ({exc})") from None
    torch.set_rng_state(tensors["torch_rng"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(t for t in tensors if t.startswith("cuda_rng_"))]
        if states:
            torch.cuda.set_rng_state_all(states)
    params = dict(model.named_parameters())
    scalars = meta.get("optimizer_scalars", {})
    for key, value in list(tensors.items()) + list(scalars.items()):
        if key.startswith("momentum/"):  # runs saved before optimizers other than SGD existed
            name, entry = key[len("momentum/"):], "momentum_buffer"
        elif key.startswith("optim/"):
            name, entry = key[len("optim/"):].rsplit("/", 1)
        else:
            continue
        p = params[name]
        optimizer.state[p][entry] = value.to(p.device) if isinstance(value, torch.Tensor) else value
    return position, {k: _rng_from_json(v) for k, v in rng_states.items()}


# ---------------------------------------------------------------------------- building blocks


def initialise_from(model, checkpoint: str | Path) -> list[str]:
    """Copy every weight of ``checkpoint`` whose name and shape match into ``model``.

    The paper fine-tunes RAN from a trained RCN (docs/method.md §3.9): a mean-pooling checkpoint gives
    the CNN, frame FC layers, classifier and similarity head; θ and θ′ keep their fresh init.

    Returns:
        The names of the model's tensors that were *not* initialised from the checkpoint.

    Raises:
        TrainingError: the checkpoint cannot be read, or shares no trunk weight with the model.
    """
    import torch

    from reidviewer.model.checkpoint import load_checkpoint

    try:
        source, _, _ = load_checkpoint(checkpoint)
    except ReidViewerError as exc:
        raise TrainingError(f"cannot initialise from {checkpoint}: {exc}") from exc
    theirs = source.state_dict()
    ours = model.state_dict()
    matched = {k: v for k, v in theirs.items() if k in ours and ours[k].shape == v.shape}
    if not any(k.startswith("cnn.") for k in matched):
        raise TrainingError(f"cannot initialise from {checkpoint}: its CNN does not match this model's")
    with torch.no_grad():
        for k, v in matched.items():
            ours[k].copy_(v)
    return sorted(set(ours) - set(matched))


def parameter_groups(model, config: TrainConfig) -> list[dict[str, Any]]:
    """Optimiser parameter groups: the attention parameters θ, θ′ and the rest, each with its
    lr scale; BatchNorm and bias parameters get no weight decay (they only shift and scale).

    θ and θ′ are 384 numbers whose gradient reaches them only through the relative weighting
    of frames, so with a schedule much shorter than the paper's they barely move from their
    near-uniform start; ``attention_lr_scale`` lets them move faster.
    """
    if not config.attention_lr_scale >= 0:
        raise TrainingError(f"attention_lr_scale must be 0 or more, got {config.attention_lr_scale}")
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        attention = name.startswith(("head.attention.", "head.refine."))
        no_decay = p.ndim <= 1
        groups.setdefault((attention, no_decay), []).append(p)
    out = []
    for (attention, no_decay), params in sorted(groups.items()):
        out.append({"params": params, "lr_scale": float(config.attention_lr_scale) if attention else 1.0,
                    "weight_decay": 0.0 if no_decay else float(config.weight_decay)})
    return out


def make_optimizer(model, config: TrainConfig):
    """The optimiser ``config`` names, over ``parameter_groups``."""
    import torch

    groups = parameter_groups(model, config)
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.Adam(groups, lr=config.lr)


def _distributed() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def available_cpus() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def _check_recipe_settings(config: TrainConfig) -> None:
    defaults = TrainConfig(recipe=config.recipe)
    for name, recipe in RECIPE_ONLY.items():
        if config.recipe != recipe and getattr(config, name) != getattr(defaults, name):
            raise TrainingError(f"{name} is a setting of the {recipe} recipe, not of --recipe {config.recipe}")


# ---------------------------------------------------------------------------- the loop


def train(
    config: TrainConfig,
    workspace,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = False,
    dataset: VideoDataset | None = None,
    report_interval: float = 0.1,
) -> TrainOutcome:
    """Train a model by ``config.recipe``.

    Args:
        config: the run's settings.
        workspace: where caches and the run folder live.
        progress: called with a ``TrainProgress`` at most every ``report_interval`` seconds
            (and at every validation and at the end).
        should_stop: polled between steps; when it returns True the run saves a checkpoint and
            returns with ``stopped=True``.
        resume: continue the run in ``config.run_name`` from its last state.
        dataset: an already opened dataset *view* (for example with annotations applied:
            corrected identities, excluded tracklets or frames); default: open ``config.root``.
        report_interval: seconds between progress reports.

    Returns:
        A ``TrainOutcome`` naming the run folder and the last checkpoint.

    Raises:
        TrainingError: a NaN loss, CUDA out of memory, a bad frame or a full disk (the run
            folder and its last good checkpoint are kept).
    """
    import torch

    from reidviewer.data.cache import FrameCache
    from reidviewer.data.preprocess import PreprocessConfig
    from reidviewer.data.registry import open_dataset
    from reidviewer.data.transforms import crop_size
    from reidviewer.engine.clips import ClipSource, stack_clips
    from reidviewer.engine.evaluate import pick_device
    from reidviewer.engine.health import Health, batch_stats
    from reidviewer.engine.sampler import IdentitySampler, PairSampler
    from reidviewer.engine.validation import validate
    from reidviewer.model.config import ModelConfig
    from reidviewer.model.losses import LossConfig, batch_loss, pair_loss
    from reidviewer.model.network import build_model
    from reidviewer.workspace import atomic_write_json

    t_begin = time.monotonic()
    progress = progress or (lambda p: None)
    should_stop = should_stop or (lambda: False)
    _check_recipe_settings(config)
    if config.threads:
        torch.set_num_threads(int(config.threads))
    rank, world = _distributed()
    ddp = world > 1
    device = pick_device(config.device)
    owns_process_group = False
    if ddp:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
            owns_process_group = True
        if device.type == "cuda":
            local = int(os.environ.get("LOCAL_RANK", 0))
            torch.cuda.set_device(local)
            device = torch.device("cuda", local)

    if dataset is None:
        dataset = open_dataset(config.root, config.dataset, config.protocol, workspace)
    split = dataset.split(config.split)
    labels = split.train_labels(dataset.tracklets)
    camids = np.array([dataset.tracklets[i].camid for i in split.train])
    try:
        if config.uses_pairs:
            sampler: Any = PairSampler(split.train, labels, camids)
        else:
            sampler = IdentitySampler(split.train, labels, camids, config.ids_per_batch, config.tracklets_per_id)
    except ValueError as exc:
        raise TrainingError(f"{dataset.root}: {exc}") from None

    run_dir = run_dir_for(workspace, config.run_name)
    config.run_name = str(run_dir.name)

    # Settings are checked before the run folder exists, so a bad start leaves nothing behind.
    try:
        loss_cfg = LossConfig(**config.loss)
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"invalid loss settings {config.loss}: {exc}") from None
    try:
        pre_cfg = PreprocessConfig(**{**config.preprocess, **({} if config.use_flow else {"use_flow": False})})
        crop_h, crop_w = crop_size(pre_cfg.height, pre_cfg.width)
        model_cfg = ModelConfig(head=config.head, iterations=config.iterations, num_classes=sampler.num_ids,
                                input_height=crop_h, input_width=crop_w, **config.model)
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"invalid model or preprocessing settings: {exc}") from None
    torch.manual_seed(config.seed)
    model = build_model(model_cfg)
    if config.init_from and not resume:
        initialise_from(model, config.init_from)
    # channels_last makes the 5×5 convolutions 1.3–1.9× faster forward and backward here (measured
    # on this CPU); checkpoints are saved contiguous, so the layout never leaks into files.
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, config)
    has_attention = model_cfg.has_attention
    if rank == 0:
        try:
            run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TrainingError(f"{run_dir}: cannot create the run folder ({exc.strerror or exc}); "
                                "choose another --workspace or --out") from None

    cache = FrameCache(workspace, dataset, pre_cfg)
    if rank == 0:
        # Cancellable, so Stop also works while a large set is first preprocessed.
        cache.ensure(np.unique(np.concatenate([split.train, split.query, split.gallery])), cancel=should_stop)
    if ddp:
        torch.distributed.barrier()
    clips = ClipSource(cache, dataset, config.seq_len, config.use_flow, pre_cfg.negate_flow_on_flip,
                       config.clip_sampling, config.random_erasing)

    rng = np.random.default_rng([config.seed, 0])
    # Each rank draws its own crops and clips; all ranks share the epoch's batches.
    clip_rng = np.random.default_rng([config.seed, 1, rank])
    position: dict[str, Any] = {"epoch": 0, "step": 0, "global_step": 0, "order": None, "pairs": None,
                                "batches": None, "val_rank1": None, "val_map": None, "elapsed": 0.0,
                                "overhead": None}
    if resume:
        saved, rngs = load_state(run_dir, model, optimizer)
        position.update(saved)
        rng = rngs["pairs"]
        clip_rng = rngs.get(f"clips{rank}", clip_rng)
    if rank == 0:
        try:
            atomic_write_json(run_dir / "config.json", config.to_dict())  # resumed: e.g. more epochs
            if not resume:
                (run_dir / "metrics.jsonl").unlink(missing_ok=True)
            else:
                drop_metrics_after(run_dir / "metrics.jsonl", int(position["global_step"]))
        except OSError as exc:
            raise TrainingError(f"{run_dir}: cannot write the run's settings ({exc.strerror or exc}); "
                                "is the disk full or the folder read-only?") from None

    train_model = model
    if ddp:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    if config.uses_pairs:
        per_step = config.pairs_per_step * world
        steps_per_epoch = math.ceil(sampler.pairs_per_epoch / per_step)
    else:
        steps_per_epoch = sampler.steps_per_epoch
    total_steps = steps_per_epoch * config.epochs
    use_amp = config.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    # The time budget: the loop gets what is left after the start (preprocessing) and a reserve
    # for the final validation and checkpoint, so the whole run ends on time.
    if position["overhead"] is None:
        position["overhead"] = time.monotonic() - t_begin
    val_frames = sum(min(len(dataset.tracklets[int(i)]), config.eval_frames)
                     for i in np.unique(np.concatenate([split.query, split.gallery])))
    reserve = 3.0 + (val_frames / 800.0 if config.eval_every else 0.0)
    budget = config.minutes * 60.0
    loop_budget = max(budget - position["overhead"] - reserve, 0.1 * budget) if budget else 0.0

    meta_base = {
        "training": config.to_dict(),
        "recipe": config.recipe,
        "dataset": {"name": dataset.name, "root": str(dataset.root), "protocol": dataset.protocol,
                    "fingerprint": dataset.fingerprint, "split": config.split,
                    "train_ids": sampler.num_ids},
        "preprocess": pre_cfg.to_dict(),
    }
    metrics_log = run_dir / "metrics.jsonl"
    acc: dict[str, float] = {}
    acc_n = 0
    last_report = 0.0
    tracklets_done = 0
    t_loop = time.monotonic()
    elapsed_at_start = float(position["elapsed"])
    reason = "finished"
    spread = None
    health = Health(num_classes=sampler.num_ids, steps_per_epoch=steps_per_epoch, recipe=str(getattr(config, "recipe", "")))
    said_health: list[str] = []

    def elapsed() -> float:
        return elapsed_at_start + time.monotonic() - t_loop

    def fraction() -> float:
        by_steps = position["global_step"] / max(total_steps, 1)
        return max(by_steps, elapsed() / loop_budget) if loop_budget else by_steps

    def lr_now() -> float:
        return config.lr_at(position["epoch"], fraction())

    def log(record: dict) -> None:
        if rank == 0:
            try:
                with open(metrics_log, "a") as fh:
                    fh.write(json.dumps(record) + "\n")
            except OSError as exc:
                raise TrainingError(f"{metrics_log}: cannot write the metrics log ({exc.strerror or exc}); "
                                    "is the disk full?") from None

    def checkpoint(tag: str | None = None) -> Path:
        position["elapsed"] = elapsed()
        meta = {**meta_base, "epochs_done": position["epoch"], "global_step": position["global_step"],
                "metrics": {"val_rank1": position["val_rank1"], "val_map": position["val_map"]}}
        path = run_dir / "last.safetensors"
        clip_rngs = {f"clips{rank}": clip_rng}
        if ddp:
            # Every rank draws its own crops: rank 0 saves all their streams, so a resumed
            # torchrun run continues each one exactly (collective: all ranks checkpoint together).
            states: list = [None] * world
            torch.distributed.all_gather_object(states, _rng_state_json(clip_rng))
            clip_rngs = {f"clips{r}": _rng_from_json(st) for r, st in enumerate(states)}
        if rank == 0:
            try:
                path = save_state(run_dir, model, optimizer, config, position,
                                  {"pairs": rng, **clip_rngs}, model_cfg, meta)
                if tag:
                    from reidviewer.model.checkpoint import save_checkpoint

                    save_checkpoint(run_dir / f"{tag}.safetensors", model, model_cfg, meta)
            except OSError as exc:
                raise TrainingError(f"{run_dir}: cannot write the checkpoint ({exc.strerror or exc}); "
                                    "is the disk full? The previous checkpoint is kept.") from None
            except Exception as exc:  # safetensors reports a full disk as its own error type
                if type(exc).__name__ != "SafetensorError":
                    raise
                raise TrainingError(f"{run_dir}: cannot write the checkpoint ({exc}); is the disk full? "
                                    "The previous checkpoint is kept.") from None
        return path

    # The next wall-clock mark (seconds of training) at which to keep the weights.
    step_s = 60 * config.checkpoint_minutes
    next_mark = [(math.floor(elapsed_at_start / step_s) + 1) * step_s if step_s else math.inf]

    def keep_weights(tag: str) -> None:
        """Only the model (no optimizer state): a point of a learning curve, not a resume point."""
        from reidviewer.model.checkpoint import save_checkpoint

        meta = {**meta_base, "epochs_done": position["epoch"], "global_step": position["global_step"],
                "elapsed_s": round(elapsed(), 1)}
        try:
            save_checkpoint(run_dir / f"{tag}.safetensors", model, model_cfg, meta)
        except OSError as exc:
            raise TrainingError(f"{run_dir}: cannot write {tag}.safetensors ({exc.strerror or exc}); "
                                "is the disk full?") from None

    def report(message: str = "", force: bool = False) -> None:
        nonlocal last_report, acc, acc_n
        now = time.monotonic()
        if not force and now - last_report < report_interval:
            return
        last_report = now
        run_time = max(now - t_loop, 1e-9)
        rate = tracklets_done / run_time
        done = fraction()
        steps_now = position["global_step"] - start_step
        eta = (total_steps - position["global_step"]) * run_time / steps_now if steps_now else float("nan")
        if loop_budget:
            eta = min(eta, loop_budget - elapsed()) if math.isfinite(eta) else loop_budget - elapsed()
        losses = {k: v / max(acc_n, 1) for k, v in acc.items()}
        p = TrainProgress(
            epoch=position["epoch"], epochs=config.epochs, step=position["step"], steps_per_epoch=steps_per_epoch,
            global_step=position["global_step"], total_steps=total_steps, losses=losses,
            lr=lr_now(), tracklets_per_s=rate, val_rank1=position["val_rank1"], eta_s=max(eta, 0.0),
            attention_spread=spread, message=message, val_map=position["val_map"],
            health=list(health.warnings.values()), fraction=done,
        )
        if losses:
            log({"epoch": p.epoch, "step": p.step, "global_step": p.global_step, "lr": p.lr,
                 "tracklets_per_s": rate, **{f"loss_{k}": v for k, v in losses.items()},
                 "attention_spread": spread, "time": time.time()})
        acc, acc_n = {}, 0
        if rank == 0:
            progress(p)

    def stop_requested() -> bool:
        asked = bool(should_stop())
        if not ddp:
            return asked
        # One rank's Ctrl+C must stop all of them at the same step, or the others would wait
        # for its gradients forever.
        flag = torch.tensor([int(asked)], device=device if device.type == "cuda" else "cpu")
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

    def run_validation() -> None:
        v = validate(model, dataset, split, cache, max_frames=config.eval_frames, use_flow=config.use_flow,
                     has_attention=has_attention)
        position["val_rank1"], position["val_map"] = v.rank1, v.mAP
        log({"epoch": position["epoch"], "global_step": position["global_step"], "val_rank1": v.rank1,
             "val_map": v.mAP, "val_attention_spread": v.attention_spread, "time": time.time()})
        report(f"validation rank-1 {v.rank1:.3f}, mAP {v.mAP:.3f}", force=True)

    def snapshot() -> dict:
        return {"model": copy.deepcopy(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict()),
                "position": copy.deepcopy(position), "rng": _rng_state_json(rng), "clip_rng": _rng_state_json(clip_rng),
                "torch_rng": torch.get_rng_state()}

    def epoch_batches() -> None:
        """Draw the epoch's batches once (saved in the state, so a resumed run repeats them)."""
        if config.uses_pairs:
            position["order"] = sampler.epoch_order(rng).tolist()
            position["pairs"] = [dataclasses.astuple(sampler.pair(np.array(position["order"]), i, rng))
                                 for i in range(sampler.pairs_per_epoch)]
        else:
            position["batches"] = [[list(item) for item in b] for b in sampler.epoch(rng)]

    def step_batch(s: int):
        """This rank's clips of step ``s``: (x, mask, labels, same-flags or None, count)."""
        if config.uses_pairs:
            chunk = position["pairs"][s * per_step:(s + 1) * per_step]
            mine = chunk[rank::world] or chunk[:1]
            a_clips = [clips.clip(p[0], clip_rng) for p in mine]
            b_clips = [clips.clip(p[1], clip_rng) for p in mine]
            x, mask = stack_clips(a_clips + b_clips)
            labs = torch.tensor([p[2] for p in mine] + [p[3] for p in mine])
            same = torch.tensor([p[4] for p in mine], dtype=torch.bool)
            return x, mask, labs, same, 2 * len(chunk)
        batch = position["batches"][s]
        if ddp:  # each rank takes whole identities, so its triplets have positives
            ids = sorted({lab for _, lab in batch})
            keep = set(ids[rank::world])
            batch = [item for item in batch if item[1] in keep] or batch[:config.tracklets_per_id]
        x, mask = stack_clips([clips.clip(t, clip_rng) for t, _ in batch])
        return x, mask, torch.tensor([lab for _, lab in batch]), None, len(position["batches"][s])

    start_step = position["global_step"]
    last_healthy = snapshot()
    try:
        while position["epoch"] < config.epochs:
            epoch = position["epoch"]
            if position["pairs" if config.uses_pairs else "batches"] is None:
                epoch_batches()
            model.train()
            while position["step"] < steps_per_epoch:
                if stop_requested():
                    reason = "stopped"
                    break
                if loop_budget and elapsed() >= loop_budget:
                    reason = "budget"
                    break
                for group in optimizer.param_groups:
                    group["lr"] = lr_now() * group["lr_scale"]
                x, mask, labs, same, count = step_batch(position["step"])
                x, mask, labs = x.to(device, non_blocking=True), mask.to(device, non_blocking=True), labs.to(device)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    out = train_model(x, mask)
                    feats = out.feature.float()
                    if same is not None:
                        n = len(same)
                        lt = pair_loss(model, feats[:n], feats[n:], labs[:n], labs[n:], loss_cfg, same=same.to(device))
                        terms = {"total": lt.total, "hinge": lt.hinge, "id1": lt.id1, "id2": lt.id2, "sim": lt.sim}
                        id_loss = 0.5 * (lt.id1 + lt.id2)
                    else:
                        bt = batch_loss(model, feats, labs, loss_cfg, out.attention.float() if has_attention else None,
                                        mask)
                        terms = {k: v for k, v in bt.as_dict().items()
                                 if k == "total" or getattr(loss_cfg, f"weight_{k}", 1.0)}
                        id_loss = bt.id if loss_cfg.weight_id else None
                loss = terms["total"]
                if not torch.isfinite(loss):
                    kept = (f"The last good checkpoint is kept in {run_dir}"
                            if (run_dir / "last.safetensors").is_file() else "No checkpoint was written yet")
                    raise TrainingError(
                        f"the loss became {float(loss)} at epoch {epoch + 1}, step {position['step'] + 1}: "
                        f"training diverged. {kept}; lower the learning rate (--lr) and start again.")
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                if config.grad_clip:
                    torch.nn.utils.clip_grad_value_(model.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                for k, v in terms.items():
                    acc[k] = acc.get(k, 0.0) + float(v.detach())
                acc_n += 1
                stats = batch_stats(feats, out.attention if has_attention else None, mask, float(loss.detach()),
                                    float(id_loss.detach()) if id_loss is not None else None)
                spread = stats.attention_spread
                tracklets_done += count
                position["step"] += 1
                position["global_step"] += 1
                # After the step is counted, so the records name the step they describe.
                health.update(stats, fraction())
                if sorted(health.warnings) != said_health:  # a problem began or ended: log and show it
                    said_health = sorted(health.warnings)
                    log({"global_step": position["global_step"], "health": list(health.warnings.values()),
                         "problems": said_health, "time": time.time()})
                    report(force=True)
                if config.checkpoint_minutes and rank == 0 and elapsed() >= next_mark[0]:
                    keep_weights(f"minute_{next_mark[0] / 60:g}")
                    while next_mark[0] <= elapsed():
                        next_mark[0] += 60 * config.checkpoint_minutes
                if health.collapsed and config.stop_on_collapse:
                    reason = "collapsed"
                    break
                report()
            if reason != "finished":
                break
            position["epoch"] += 1
            position["step"] = 0
            position["order"] = position["pairs"] = position["batches"] = None
            done_epoch = position["epoch"]
            if config.eval_every and done_epoch % config.eval_every == 0 and done_epoch < config.epochs and rank == 0:
                run_validation()
            if config.checkpoint_every and done_epoch % config.checkpoint_every == 0 and done_epoch < config.epochs:
                checkpoint(f"epoch_{done_epoch:04d}")
            if health.healthy:
                last_healthy = snapshot()
    except torch.cuda.OutOfMemoryError:
        raise TrainingError(
            f"the GPU ran out of memory; lower --pairs-per-step or --ids-per-batch. The run folder {run_dir} "
            "is kept.") from None
    if reason == "collapsed":
        # Back to the weights (and optimizer, position, generators) of the last healthy epoch end.
        model.load_state_dict(last_healthy["model"])
        optimizer.load_state_dict(last_healthy["optimizer"])
        position.clear()
        position.update(last_healthy["position"])
        rng = _rng_from_json(last_healthy["rng"])
        clip_rng = _rng_from_json(last_healthy["clip_rng"])
        torch.set_rng_state(last_healthy["torch_rng"])
        log({"global_step": position["global_step"], "event": "collapsed: restored the weights of epoch "
             f"{position['epoch']}", "time": time.time()})
    if ddp:
        # The replicas must hold the same weights (DDP averages gradients); check and log it.
        sums = replica_checksums(model)
        if rank == 0:
            log({"ddp_weight_checksums": sums, "global_step": position["global_step"], "time": time.time()})
        if len(set(sums)) != 1:
            raise TrainingError(f"the {world} training processes ended with different weights: {sums}")
    if reason in ("finished", "budget") and config.eval_every and rank == 0 and position["global_step"] > start_step:
        run_validation()
    ckpt = checkpoint()
    message = {"finished": "finished", "budget": f"time budget of {config.minutes:g} min reached",
               "stopped": "stopped", "collapsed": "stopped: the embedding collapsed"}[reason]
    report(message, force=True)
    if ddp:
        torch.distributed.barrier()
        if owns_process_group:
            # Left to interpreter shutdown, gloo's threads can abort the process
            # ("terminate called without an active exception") after a successful run.
            torch.distributed.destroy_process_group()
    return TrainOutcome(run_dir, ckpt, reason in ("stopped", "collapsed"), position["epoch"], position["global_step"],
                        position["val_rank1"], position["val_map"], reason)


def weight_checksum(model) -> str:
    """A short hash of every parameter's bytes (to compare replicas bit for bit)."""
    import hashlib

    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def replica_checksums(model) -> list[str]:
    """The weight checksum of every process of a distributed run (rank order)."""
    import torch.distributed as dist

    mine = weight_checksum(model)
    out: list = [None] * dist.get_world_size()
    dist.all_gather_object(out, mine)
    return [str(x) for x in out]


def resumed_config(run_dir: Path, requested: TrainConfig | None = None) -> TrainConfig:
    """The settings to resume ``run_dir`` with: the run's own, plus allowed changes.

    Args:
        run_dir: the run folder (holds ``config.json`` and ``state.json``).
        requested: settings asked for now; its ``device``, its ``run_name`` (when set), its
            ``epochs`` (when not 0: train longer, or stop sooner) and its ``minutes`` (when not
            0) are taken, the rest ignored.

    Raises:
        TrainingError: the run has no readable ``config.json``, or ``requested`` asks for
            fewer epochs than the run has already done.
    """
    path = Path(run_dir) / "config.json"
    try:
        saved = TrainConfig.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise TrainingError(f"{run_dir}: nothing to resume (no config.json in the run folder)") from None
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise TrainingError(f"{path}: cannot read the run's settings ({exc})") from exc
    if requested is not None:
        saved.device = requested.device
        saved.threads = requested.threads
        if requested.minutes:
            saved.minutes = requested.minutes
        if requested.epochs:
            try:
                done = int(json.loads((Path(run_dir) / "state.json").read_text())["position"]["epoch"])
            except (OSError, ValueError, KeyError, TypeError):
                done = 0
            if requested.epochs < done:
                raise TrainingError(f"{run_dir}: the run has already done {done} epochs; "
                                    f"--epochs {requested.epochs} would undo them")
            saved.epochs = requested.epochs
    saved.run_name = requested.run_name if requested is not None and requested.run_name else Path(run_dir).name
    return saved
