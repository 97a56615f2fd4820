"""Training: the RCN/RAN Siamese protocol (SPEC §c), resumable and observable.

``train(config, workspace, progress, should_stop)`` is the one function the CLI, the app's
training worker and ``torchrun`` all call. It reports progress through a callback (at most
about 10 times a second), stops cooperatively when ``should_stop()`` turns true (leaving a
checkpoint), and writes everything into one run folder of the workspace:

    runs/<name>/config.json         the TrainConfig
    runs/<name>/metrics.jsonl       one JSON object per logged step / validation
    runs/<name>/last.safetensors    the latest weights (+ .json metadata: a normal checkpoint)
    runs/<name>/state.safetensors   optimizer state and RNG states for --resume (+ state.json)
    runs/<name>/epoch_NNNN.safetensors  periodic checkpoints

Resuming restores the weights, the optimizer's momentum buffers, every RNG (numpy's
generator for pair/clip sampling and torch's for dropout) and the position inside the epoch,
so a stopped-and-resumed run on the CPU ends with the same weights as an uninterrupted one.
"""
from __future__ import annotations

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
from reidviewer.errors import ReidViewerError


class TrainingError(ReidViewerError):
    """Training cannot go on (NaN loss, out of memory, a bad frame, a full disk)."""


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as the run's ``config.json``.

    Defaults follow the paper (SPEC §c.1) with RCN's loop details (§c.2).
    """

    root: str = ""
    dataset: str = "auto"
    protocol: str | None = None
    split: int = 0
    head: str = "ran"
    iterations: int = 3
    model: dict[str, Any] = field(default_factory=dict)  # extra ModelConfig fields
    epochs: int = 1000
    lr: float = 1e-3
    attention_lr_scale: float = 1.0  # lr multiplier for θ and θ′ (the attention parameters)
    init_from: str = ""  # checkpoint whose matching weights start the run (e.g. a trained trunk)
    momentum: float = 0.9
    milestones: tuple[int, ...] = (300, 600)
    gamma: float = 0.1
    pairs_per_step: int = 1
    seq_len: int = 16
    grad_clip: float = 5.0
    seed: int = 1
    device: str = "auto"
    amp: bool = True
    eval_every: int = 100
    eval_frames: int = 16
    checkpoint_every: int = 50
    use_flow: bool = True
    preprocess: dict[str, Any] = field(default_factory=dict)  # extra PreprocessConfig fields
    loss: dict[str, Any] = field(default_factory=dict)  # LossConfig fields (margin, hinge form, weights)
    run_name: str = ""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        d = dict(d)
        if "milestones" in d:
            d["milestones"] = tuple(int(m) for m in d["milestones"])
        return cls(**d)

    @classmethod
    def from_cli(cls, args) -> TrainConfig:
        c = cls(root=str(args.root), dataset=args.dataset, protocol=args.protocol, split=args.split,
                head=args.head, iterations=args.iterations, device=args.device)
        if args.epochs is not None:
            c.epochs = args.epochs
        if args.lr is not None:
            c.lr = args.lr
        if getattr(args, "attention_lr_scale", None) is not None:
            c.attention_lr_scale = args.attention_lr_scale
        if getattr(args, "hinge", None):
            c.loss = {**c.loss, "hinge": args.hinge}
        if getattr(args, "init_from", None):
            c.init_from = str(Path(args.init_from).expanduser().resolve())
        if getattr(args, "pooling", None) is not None:
            if c.head != "ran":
                raise ValueError(f"--pooling is a setting of the RAN head, not of --head {c.head}")
            c.model = {**c.model, "pooling": args.pooling}
        if args.milestones is not None:
            c.milestones = tuple(int(x) for x in args.milestones.split(",") if x.strip())
        if args.pairs_per_step is not None:
            c.pairs_per_step = args.pairs_per_step
        if args.seed is not None:
            c.seed = args.seed
        if args.eval_every is not None:
            c.eval_every = args.eval_every
        if args.checkpoint_every is not None:
            c.checkpoint_every = args.checkpoint_every
        if args.no_flow:
            c.use_flow = False
        c.run_name = args.out or ""
        return c

    def lr_at(self, epoch: int) -> float:
        """Learning rate in ``epoch`` (0-based): ÷(1/gamma) at each milestone passed."""
        return self.lr * self.gamma ** sum(epoch >= m for m in self.milestones)


@dataclass
class TrainProgress:
    """One progress report."""

    epoch: int
    epochs: int
    step: int                 # step within the epoch
    steps_per_epoch: int
    global_step: int
    total_steps: int
    losses: dict[str, float]  # hinge, id1, id2, sim, total (averaged since the last report)
    lr: float
    pairs_per_s: float
    val_rank1: float | None
    eta_s: float
    attention_spread: float | None = None
    message: str = ""

    @property
    def fraction(self) -> float:
        return self.global_step / max(self.total_steps, 1)


@dataclass
class TrainOutcome:
    """How a run ended."""

    run_dir: Path
    checkpoint: Path
    stopped: bool
    epochs_done: int
    global_step: int
    val_rank1: float | None


def run_dir_for(workspace, name: str) -> Path:
    """The run folder: a path if ``name`` looks like one, else ``workspace/runs/<name>``."""
    if name and (os.sep in name or name.startswith(".")):
        return Path(name).expanduser().resolve()
    if not name:
        name = time.strftime("run-%Y%m%d-%H%M%S")
    return workspace.runs_dir / name


# ---------------------------------------------------------------------------- data


class ClipSource:
    """Training clips from the preprocessing cache: 16 consecutive frames from a random start,
    one crop offset and flip per sequence (SPEC §b.3, §c.2)."""

    def __init__(self, cache, dataset: VideoDataset, seq_len: int, use_flow: bool,
                 negate_flow_on_flip: bool = False) -> None:
        self.cache = cache
        self.negate_flow_on_flip = negate_flow_on_flip
        self.dataset = dataset
        self.seq_len = seq_len
        self.use_flow = use_flow

    def clip(self, index: int, rng: np.random.Generator) -> np.ndarray:
        """(T, 5, 56, 40) float32, T = min(seq_len, length)."""
        from reidviewer.data.transforms import sample_train_clip, train_transform

        frames = sample_train_clip(len(self.dataset.tracklets[index]), rng, self.seq_len)
        seq = self.cache.network_input(index, slice(int(frames[0]), int(frames[-1]) + 1))
        out, _ = train_transform(seq, rng, self.negate_flow_on_flip)
        out = np.ascontiguousarray(out, dtype=np.float32)
        if not self.use_flow:
            out[:, 3:5] = 0.0
        return out


def _stack(clips: list[np.ndarray]):
    """Pad clips of different lengths into (B, T, C, H, W) with a (B, T) mask."""
    import torch

    t = max(c.shape[0] for c in clips)
    b = len(clips)
    x = np.zeros((b, t) + clips[0].shape[1:], dtype=np.float32)
    mask = np.zeros((b, t), dtype=bool)
    for i, c in enumerate(clips):
        x[i, : len(c)] = c
        mask[i, : len(c)] = True
    return torch.from_numpy(x), torch.from_numpy(mask)


# ---------------------------------------------------------------------------- state files


def _rng_state_json(rng: np.random.Generator) -> dict:
    return rng.bit_generator.state


def _rng_from_json(state: dict) -> np.random.Generator:
    bg = np.random.PCG64()
    bg.state = state
    return np.random.Generator(bg)


def save_state(run_dir: Path, model, optimizer, cfg: TrainConfig, position: dict,
               rngs: dict[str, np.random.Generator], model_config, meta: dict) -> Path:
    """Write ``last.safetensors`` (+json) and ``state.safetensors`` (+json), atomically."""
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
    for group in optimizer.param_groups:
        for p in group["params"]:
            st = optimizer.state.get(p, {})
            buf = st.get("momentum_buffer")
            if buf is not None:
                tensors[f"momentum/{names[id(p)]}"] = buf.detach().cpu().contiguous()
    atomic_write_with(run_dir / "state.safetensors", lambda tmp: save_file(tensors, str(tmp)))
    atomic_write_json(run_dir / "state.json", {"position": position,
                                               "rngs": {k: _rng_state_json(r) for k, r in rngs.items()},
                                               "config": cfg.to_dict()})
    return ckpt


def load_state(run_dir: Path, model, optimizer) -> tuple[dict, dict[str, np.random.Generator]]:
    """Restore what ``save_state`` wrote; returns (position, numpy generators by name)."""
    import torch
    from safetensors.torch import load_file

    state_json = run_dir / "state.json"
    if not state_json.is_file():
        raise TrainingError(f"{run_dir}: nothing to resume (no state.json in the run folder)")
    meta = json.loads(state_json.read_text())
    weights = load_file(str(run_dir / "last.safetensors"))
    model.load_state_dict(weights, strict=True)
    tensors = load_file(str(run_dir / "state.safetensors"))
    torch.set_rng_state(tensors["torch_rng"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(t for t in tensors if t.startswith("cuda_rng_"))]
        if states:
            torch.cuda.set_rng_state_all(states)
    params = dict(model.named_parameters())
    for key, value in tensors.items():
        if key.startswith("momentum/"):
            p = params[key[len("momentum/"):]]
            optimizer.state[p]["momentum_buffer"] = value.to(p.device)
    return meta["position"], {k: _rng_from_json(v) for k, v in meta["rngs"].items()}


# ---------------------------------------------------------------------------- the loop


def initialise_from(model, checkpoint: str | Path) -> list[str]:
    """Copy every weight of ``checkpoint`` whose name and shape match into ``model``.

    The paper fine-tunes RAN from a trained RCN (SPEC §a.3): a mean-pooling checkpoint gives
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
    """SGD parameter groups: the attention parameters θ, θ′ and the rest, each with its lr scale.

    θ and θ′ are 384 numbers whose gradient reaches them only through the relative weighting
    of frames, so with a schedule much shorter than the paper's they barely move from their
    near-uniform start; ``attention_lr_scale`` lets them move faster. (On SynthWalk this spread
    attention more without making it more occlusion-aware: see checkpoints/MODEL_CARD.md.)
    """
    attention, rest = [], []
    for name, p in model.named_parameters():
        (attention if name.startswith(("head.attention.", "head.refine.")) else rest).append(p)
    if not config.attention_lr_scale >= 0:
        raise TrainingError(f"attention_lr_scale must be 0 or more, got {config.attention_lr_scale}")
    groups = [{"params": rest, "lr_scale": 1.0}]
    if attention:
        groups.append({"params": attention, "lr_scale": float(config.attention_lr_scale)})
    return groups


def _distributed() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) otherwise."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def train(
    config: TrainConfig,
    workspace,
    progress: Callable[[TrainProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    resume: bool = False,
    dataset: VideoDataset | None = None,
    report_interval: float = 0.1,
) -> TrainOutcome:
    """Train a model by the RCN/RAN protocol.

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
    from reidviewer.engine.evaluate import pick_device
    from reidviewer.engine.sampler import PairSampler
    from reidviewer.model.config import ModelConfig
    from reidviewer.model.losses import LossConfig, pair_loss
    from reidviewer.model.network import build_model
    from reidviewer.workspace import atomic_write_json

    progress = progress or (lambda p: None)
    should_stop = should_stop or (lambda: False)
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
    sampler = PairSampler(split.train, labels, camids)

    run_dir = run_dir_for(workspace, config.run_name)
    config.run_name = str(run_dir.name)

    # Settings are checked before the run folder exists, so a bad start leaves nothing behind.
    try:
        loss_cfg = LossConfig(**config.loss)
    except (TypeError, ValueError) as exc:
        raise TrainingError(f"invalid loss settings {config.loss}: {exc}") from None
    torch.manual_seed(config.seed)
    model_cfg = ModelConfig(head=config.head, iterations=config.iterations, num_classes=sampler.num_ids,
                            **config.model)
    # channels_last makes the 5×5 convolutions 1.3–1.9× faster forward and backward here (measured
    # on this CPU); checkpoints are saved contiguous, so the layout never leaks into files.
    model = build_model(model_cfg)
    if config.init_from and not resume:
        initialise_from(model, config.init_from)
    model = model.to(device).to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(parameter_groups(model, config), lr=config.lr, momentum=config.momentum)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)

    pre_cfg = PreprocessConfig(**{**config.preprocess, **({} if config.use_flow else {"use_flow": False})})
    cache = FrameCache(workspace, dataset, pre_cfg)
    if rank == 0:
        # Cancellable, so Stop also works while a large set is first preprocessed.
        cache.ensure(np.unique(np.concatenate([split.train, split.query, split.gallery])), cancel=should_stop)
    if ddp:
        torch.distributed.barrier()
    clips = ClipSource(cache, dataset, config.seq_len, config.use_flow, pre_cfg.negate_flow_on_flip)

    rng = np.random.default_rng([config.seed, 0])
    # Each rank draws its own crops and clips; all ranks share the epoch's pair list.
    clip_rng = np.random.default_rng([config.seed, 1, rank])
    position = {"epoch": 0, "step": 0, "global_step": 0, "order": None, "val_rank1": None}
    if resume:
        position, rngs = load_state(run_dir, model, optimizer)
        rng = rngs["pairs"]
        clip_rng = rngs.get(f"clips{rank}", clip_rng)
        if rank == 0:
            atomic_write_json(run_dir / "config.json", config.to_dict())  # e.g. more epochs than before
    elif rank == 0:
        atomic_write_json(run_dir / "config.json", config.to_dict())
        (run_dir / "metrics.jsonl").unlink(missing_ok=True)

    train_model = model
    if ddp:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)

    pairs_per_epoch = sampler.pairs_per_epoch
    per_step = config.pairs_per_step * world
    steps_per_epoch = math.ceil(pairs_per_epoch / per_step)
    total_steps = steps_per_epoch * config.epochs
    use_amp = config.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

    meta_base = {
        "training": config.to_dict(),
        "dataset": {"name": dataset.name, "root": str(dataset.root), "protocol": dataset.protocol,
                    "fingerprint": dataset.fingerprint, "split": config.split,
                    "train_ids": sampler.num_ids},
        "preprocess": pre_cfg.to_dict(),
    }
    metrics_log = run_dir / "metrics.jsonl"
    acc: dict[str, float] = {}
    acc_n = 0
    last_report = 0.0
    t_start = time.monotonic()
    start_step = position["global_step"]
    pairs_done = 0
    stopped = False
    val_rank1 = position.get("val_rank1")
    spread = None

    def log(record: dict) -> None:
        if rank == 0:
            with open(metrics_log, "a") as fh:
                fh.write(json.dumps(record) + "\n")

    def checkpoint(tag: str | None = None) -> Path:
        meta = {**meta_base, "epochs_done": position["epoch"], "global_step": position["global_step"],
                "metrics": {"val_rank1": val_rank1}}
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
                                    "is the disk full?") from None
        return path

    def report(message: str = "", force: bool = False) -> None:
        nonlocal last_report, acc, acc_n
        now = time.monotonic()
        if not force and now - last_report < report_interval:
            return
        last_report = now
        elapsed = max(now - t_start, 1e-9)
        rate = pairs_done / elapsed
        steps_left = total_steps - position["global_step"]
        eta = steps_left * per_step / rate if rate > 0 else float("nan")
        losses = {k: v / max(acc_n, 1) for k, v in acc.items()}
        p = TrainProgress(
            epoch=position["epoch"], epochs=config.epochs, step=position["step"], steps_per_epoch=steps_per_epoch,
            global_step=position["global_step"], total_steps=total_steps, losses=losses,
            lr=config.lr_at(position["epoch"]), pairs_per_s=rate, val_rank1=val_rank1, eta_s=eta,
            attention_spread=spread, message=message,
        )
        if losses:
            log({"epoch": p.epoch, "step": p.step, "global_step": p.global_step, "lr": p.lr,
                 "pairs_per_s": rate, **{f"loss_{k}": v for k, v in losses.items()},
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

    try:
        while position["epoch"] < config.epochs:
            epoch = position["epoch"]
            for group in optimizer.param_groups:
                group["lr"] = config.lr_at(epoch) * group["lr_scale"]
            if position["order"] is None:
                position["order"] = sampler.epoch_order(rng).tolist()
                position["pairs"] = [dataclasses.astuple(sampler.pair(np.array(position["order"]), i, rng))
                                     for i in range(pairs_per_epoch)]
            pairs = position["pairs"]
            model.train()
            while position["step"] < steps_per_epoch:
                if stop_requested():
                    stopped = True
                    break
                s = position["step"]
                chunk = pairs[s * per_step : (s + 1) * per_step]
                mine = chunk[rank::world]
                if not mine:
                    mine = chunk[:1]
                a_clips = [clips.clip(p[0], clip_rng) for p in mine]
                b_clips = [clips.clip(p[1], clip_rng) for p in mine]
                x, mask = _stack(a_clips + b_clips)
                x, mask = x.to(device, non_blocking=True), mask.to(device, non_blocking=True)
                n = len(mine)
                la = torch.tensor([p[2] for p in mine], device=device)
                lb = torch.tensor([p[3] for p in mine], device=device)
                same = torch.tensor([p[4] for p in mine], device=device, dtype=torch.float32)
                optimizer.zero_grad(set_to_none=True)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                    out = train_model(x, mask)
                    fa, fb = out.feature[:n].float(), out.feature[n:].float()
                    lt = pair_loss(model, fa, fb, la, lb, loss_cfg, same=same.bool())
                terms = {"total": lt.total, "hinge": lt.hinge, "id1": lt.id1, "id2": lt.id2, "sim": lt.sim}
                loss = lt.total
                if not torch.isfinite(loss):
                    raise TrainingError(
                        f"the loss became {float(loss)} at epoch {epoch + 1}, step {s + 1}: training diverged. "
                        f"The last good checkpoint is kept in {run_dir}; lower the learning rate and resume.")
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_value_(model.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                for k, v in terms.items():
                    acc[k] = acc.get(k, 0.0) + float(v.detach())
                acc_n += 1
                att = out.attention.detach()
                if att.shape[1] > 0:
                    final = att[:, -1].float()
                    m = mask.float()
                    mean = (final * m).sum(1) / m.sum(1)
                    spread = float((((final - mean[:, None]) ** 2 * m).sum(1) / m.sum(1)).sqrt().mean())
                pairs_done += len(chunk)
                position["step"] += 1
                position["global_step"] += 1
                report()
            if stopped:
                break
            position["epoch"] += 1
            position["step"] = 0
            position["order"] = None
            position["pairs"] = None
            done_epoch = position["epoch"]
            if config.eval_every and (done_epoch % config.eval_every == 0 or done_epoch == config.epochs) and rank == 0:
                val_rank1 = validation_rank1(model, dataset, split, cache, config, device)
                position["val_rank1"] = val_rank1
                log({"epoch": done_epoch, "global_step": position["global_step"], "val_rank1": val_rank1,
                     "time": time.time()})
                report(f"validation rank-1 {val_rank1:.3f}", force=True)
            if config.checkpoint_every and done_epoch % config.checkpoint_every == 0 and done_epoch < config.epochs:
                checkpoint(f"epoch_{done_epoch:04d}")
    except torch.cuda.OutOfMemoryError:
        raise TrainingError(
            f"the GPU ran out of memory; lower --pairs-per-step. The run folder {run_dir} is kept.") from None
    if ddp:
        # The replicas must hold the same weights (DDP averages gradients); check and log it.
        sums = replica_checksums(model)
        if rank == 0:
            log({"ddp_weight_checksums": sums, "global_step": position["global_step"], "time": time.time()})
        if len(set(sums)) != 1:
            raise TrainingError(f"the {world} training processes ended with different weights: {sums}")
    ckpt = checkpoint()
    report("stopped" if stopped else "finished", force=True)
    if ddp:
        torch.distributed.barrier()
        if owns_process_group:
            # Left to interpreter shutdown, gloo's threads can abort the process
            # ("terminate called without an active exception") after a successful run.
            torch.distributed.destroy_process_group()
    return TrainOutcome(run_dir, ckpt, stopped, position["epoch"], position["global_step"], val_rank1)


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


def validation_rank1(model, dataset: VideoDataset, split, cache, config: TrainConfig, device) -> float:
    """Rank-1 on the split's query/gallery with the first ``eval_frames`` frames (RCN evaluates
    on 16-frame clips during training)."""
    import torch

    from reidviewer.data.transforms import test_transform
    from reidviewer.engine.metrics import evaluate_rank
    from reidviewer.model.inference import extract_features

    was_training = model.training
    model.eval()
    feats = {}
    with torch.inference_mode():
        idx = np.unique(np.concatenate([split.query, split.gallery]))
        clips = []
        for i in idx:
            n = len(dataset.tracklets[int(i)])
            clip = np.array(test_transform(cache.network_input(int(i), slice(0, min(n, config.eval_frames)))),
                            dtype=np.float32)
            if not config.use_flow:
                clip[:, 3:5] = 0
            clips.append(torch.from_numpy(clip))
        f = extract_features(model, clips).features.numpy()
        for i, fi in zip(idx, f):
            feats[int(i)] = fi
    model.train(was_training)
    qf = np.stack([feats[int(i)] for i in split.query])
    gf = np.stack([feats[int(i)] for i in split.gallery])
    d = np.sqrt(np.maximum(((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1), 0))
    tr = dataset.tracklets
    cmc, _ = evaluate_rank(d, np.array([tr[i].pid for i in split.query]), np.array([tr[i].pid for i in split.gallery]),
                           np.array([tr[i].camid for i in split.query]), np.array([tr[i].camid for i in split.gallery]),
                           max_rank=1)
    return float(cmc[0])


def resumed_config(run_dir: Path, requested: TrainConfig | None = None) -> TrainConfig:
    """The settings to resume ``run_dir`` with: the run's own, plus allowed changes.

    Args:
        run_dir: the run folder (holds ``config.json`` and ``state.json``).
        requested: settings asked for now; its ``device``, its ``run_name`` (when set) and its
            ``epochs`` (when not 0: train longer, or stop sooner) are taken, the rest ignored.

    Raises:
        TrainingError: the run has no readable ``config.json``, or ``requested`` asks for
            fewer epochs than the run has already done.
    """
    path = Path(run_dir) / "config.json"
    try:
        saved = TrainConfig.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        raise TrainingError(f"{run_dir}: nothing to resume (no config.json in the run folder)") from None
    except (OSError, ValueError, TypeError) as exc:
        raise TrainingError(f"{path}: cannot read the run's settings ({exc})") from exc
    if requested is not None:
        saved.device = requested.device
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


def run_training_cli(config: TrainConfig, args) -> int:
    """``reidviewer train``: a progress line on stderr, Ctrl+C stops cleanly with a checkpoint."""
    import signal
    import sys

    from reidviewer.workspace import Workspace

    workspace = Workspace(args.workspace)
    stop = {"asked": False}

    def on_sigint(signum, frame) -> None:
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        print("\nstopping after this step (Ctrl+C again to abort)…", file=sys.stderr)

    old = signal.signal(signal.SIGINT, on_sigint)
    tty = sys.stderr.isatty()

    def show(p: TrainProgress) -> None:
        losses = " ".join(f"{k} {v:.3f}" for k, v in p.losses.items())
        val = f" val R1 {p.val_rank1:.3f}" if p.val_rank1 is not None else ""
        eta = f" ETA {p.eta_s / 60:.1f} min" if math.isfinite(p.eta_s) else ""
        line = (f"epoch {p.epoch + 1}/{p.epochs} step {p.step}/{p.steps_per_epoch} {losses} "
                f"lr {p.lr:g} {p.pairs_per_s:.1f} pairs/s{val}{eta}")
        if tty:
            sys.stderr.write("\r" + line[:160].ljust(160))
            sys.stderr.flush()
        elif p.message:
            print(line + f" ({p.message})", file=sys.stderr)

    try:
        outcome = train(config, workspace, progress=show, should_stop=lambda: stop["asked"], resume=args.resume)
    finally:
        signal.signal(signal.SIGINT, old)
    if tty:
        sys.stderr.write("\n")
    rank, _ = _distributed()
    if rank == 0:
        state = "stopped" if outcome.stopped else "finished"
        val = f", validation rank-1 {outcome.val_rank1:.3f}" if outcome.val_rank1 is not None else ""
        print(f"{state} after {outcome.epochs_done} epochs ({outcome.global_step} steps){val}; "
              f"checkpoint {outcome.checkpoint}")
    return 0
