"""Training settings and the two recipes: the paper's and the fast one the field uses today.

``TrainConfig`` holds every setting of a run and is saved as its ``config.json``. Settings
that differ between the recipes default to ``None`` and are filled from the recipe when the
config is made, so ``TrainConfig(recipe="paper")`` is the paper's schedule and
``TrainConfig()`` the default recipe's, and a saved config always holds concrete values.

``paper`` (docs/method.md §5, kept exactly for reproduction)
    RCN's Siamese pair protocol: one positive and one negative pair per training person per
    epoch, 16 consecutive frames per clip, eq. 6's four loss terms, SGD (lr 1e-3, momentum
    0.9) with ÷10 steps at epochs 300 and 600 of 1000, element-wise gradient clipping at 5,
    the trunk without BatchNorm.
``fast`` (Gao & Nevatia 2018's video baselines, Luo et al. 2019's "bag of tricks")
    identity-balanced batches of P identities × K tracklets, clips of T frames by restricted
    random sampling (one random frame from each of T equal chunks), random erasing,
    label-smoothed cross-entropy plus the batch-hard triplet loss, Adam with a linear
    warm-up and a cosine decay that ends with the run — or with the time budget
    (``minutes``), so a budgeted run ends annealed — on the paper's trunk without dropout,
    plus a BNNeck, a 100× learning rate for the attention and its mean anchored at 0.5 (a
    BatchNorm/ReLU trunk and other widths are model options; on the proxy they trained
    slower and no better).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from reidviewer.errors import UsageError

#: The training recipes, the default first.
RECIPES = ("fast", "paper")
#: What new runs use: the recipe that gave the better held-out model in a 30-minute CPU
#: budget (README, "Training").
DEFAULT_RECIPE = "fast"
OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("step", "cosine")
CLIP_SAMPLINGS = ("consecutive", "restricted")

#: Settings each recipe fills in when the caller leaves them ``None``.
RECIPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "paper": {
        "epochs": 1000,
        "lr": 1e-3,
        "optimizer": "sgd",
        "weight_decay": 0.0,
        "schedule": "step",
        "milestones": (300, 600),
        "warmup": 0.0,
        "seq_len": 16,
        "clip_sampling": "consecutive",
        "random_erasing": 0.0,
        "grad_clip": 5.0,
        "eval_every": 100,
        "checkpoint_every": 50,
        "attention_lr_scale": 1.0,
        "model": {},
        "loss": {},
    },
    "fast": {
        "epochs": 120,
        "lr": 1e-3,
        "optimizer": "adam",
        "weight_decay": 5e-4,
        "schedule": "cosine",
        "milestones": (),
        "warmup": 0.05,
        # Two frames per clip: on a one-thread CPU, twice the steps of T = 4 in the same
        # minutes, and the better model in 30 (README, "Training"); evaluation still uses every frame.
        "seq_len": 2,
        "clip_sampling": "restricted",
        "random_erasing": 0.5,
        "grad_clip": 0.0,
        "eval_every": 20,
        "checkpoint_every": 20,
        # θ and θ′ start near zero and get small gradients; at the trunk's lr they stay uniform
        # (README, "Training": spread of α 0.000 at ×1, 0.011 at ×100, 0.039 with the level term).
        "attention_lr_scale": 100.0,
        # The paper's trunk (no BatchNorm, tanh, 16-32-32) beat a BatchNorm/ReLU trunk twice as
        # wide on the proxy, and dropout only slowed a 30-minute run; "mean" pooling keeps α's
        # level meaningful (Σα_i x_i / T) where "l1" lets it drift to ≈ 0.
        "model": {"dropout": 0.0, "bnneck": True, "pooling": "mean"},
        # weight_attention_level anchors a clip's mean α at 0.5 (losses.attention_level_loss):
        # without it α drifts to ≈ 0 where every frame looks equally weighted.
        "loss": {"weight_id": 1.0, "weight_hinge": 0.0, "weight_sim": 0.0, "weight_triplet": 1.0,
                 "triplet_margin": 0.3, "label_smoothing": 0.1, "weight_attention_level": 1.0},
    },
}
#: Settings only one recipe uses (the CLI refuses them with the other).
RECIPE_ONLY = {"pairs_per_step": "paper", "ids_per_batch": "fast", "tracklets_per_id": "fast"}
#: The cosine schedule ends at this fraction of the peak learning rate.
COSINE_FLOOR = 0.01


class SettingsError(UsageError):
    """A training setting has a value that cannot be used (the message names the setting)."""


def _finite(name: str, value: Any, low: float | None = None, *, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise SettingsError(f"{name} must be a finite number, got {value!r}")
    if low is not None and (value <= low if strict else value < low):
        raise SettingsError(f"{name} must be {'>' if strict else '>='} {low:g}, got {value!r}")
    return float(value)


def _integer(name: str, value: Any, low: int, high: int = 10**9) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
            value = int(value)
        else:
            raise SettingsError(f"{name} must be a whole number, got {value!r}")
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high:,}, got {value:,}")
    return int(value)


@dataclass
class TrainConfig:
    """Everything a training run needs; saved as the run's ``config.json``.

    ``None`` settings are filled from ``recipe`` (``RECIPE_DEFAULTS``); ``model`` and ``loss``
    are merged over the recipe's (the caller's keys win).

    Attributes:
        recipe: ``fast`` (default) or ``paper``.
        root, dataset, protocol, split: the data (``dataset="auto"`` recognises the layout).
        head, iterations: the temporal head and RAN's refinement iterations K.
        model: extra ``ModelConfig`` fields (BatchNorm, widths, pooling, ...).
        epochs: epochs to train (an epoch is one positive and one negative pair per person
            under ``paper``; about one pass over the training tracklets under ``fast``).
        minutes: a time budget (0: none): the run stops with a checkpoint after this many
            minutes; under a cosine schedule the decay fits the budget.
        lr, optimizer, momentum, weight_decay: the optimiser.
        schedule, milestones, gamma, warmup: ``step`` (÷1/gamma at each milestone epoch) or
            ``cosine`` (to 1 % of lr at the end), after a linear warm-up over the first
            ``warmup`` fraction of the run.
        attention_lr_scale: lr multiplier for θ and θ′ (the attention parameters).
        init_from: a checkpoint whose matching weights start the run.
        pairs_per_step: ``paper``: pairs per optimiser step.
        ids_per_batch, tracklets_per_id: ``fast``: P identities × K tracklets per batch.
        seq_len: frames per training clip.
        clip_sampling: ``consecutive`` (a random start, as RCN) or ``restricted`` (one random
            frame from each of ``seq_len`` equal chunks of the tracklet).
        random_erasing: probability that a training frame gets a random rectangle of noise.
        grad_clip: element-wise gradient clipping (0: none).
        seed, device, amp: reproducibility and hardware (AMP only on CUDA).
        threads: CPU threads for torch (0: the cores this process may use).
        eval_every, eval_frames: validation R1/mAP every N epochs on the first frames of each
            query and gallery tracklet (0: never).
        checkpoint_every: keep a numbered checkpoint every N epochs (0: only the last).
        checkpoint_minutes: also keep the weights every N minutes of training
            (``minute_NNN.safetensors``: learning curves by wall-clock time; 0: never).
        stop_on_collapse: stop (with the weights from before) when the embedding collapses.
        use_flow, preprocess, loss: inputs and loss settings (``LossConfig`` fields).
        run_name: the run folder's name.
    """

    recipe: str = DEFAULT_RECIPE
    root: str = ""
    dataset: str = "auto"
    protocol: str | None = None
    split: int = 0
    head: str = "ran"
    iterations: int = 3
    model: dict[str, Any] | None = None
    epochs: int | None = None
    minutes: float = 0.0
    lr: float | None = None
    optimizer: str | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    schedule: str | None = None
    milestones: tuple[int, ...] | None = None
    gamma: float = 0.1
    warmup: float | None = None
    attention_lr_scale: float | None = None
    init_from: str = ""
    pairs_per_step: int = 1
    ids_per_batch: int = 16
    tracklets_per_id: int = 4
    seq_len: int | None = None
    clip_sampling: str | None = None
    random_erasing: float | None = None
    grad_clip: float | None = None
    seed: int = 1
    device: str = "auto"
    amp: bool = True
    threads: int = 0
    eval_every: int | None = None
    eval_frames: int = 16
    checkpoint_every: int | None = None
    checkpoint_minutes: float = 0.0
    stop_on_collapse: bool = True
    use_flow: bool = True
    preprocess: dict[str, Any] = field(default_factory=dict)
    loss: dict[str, Any] | None = None
    run_name: str = ""

    def __post_init__(self) -> None:
        if self.recipe not in RECIPE_DEFAULTS:
            raise SettingsError(f"recipe must be one of {', '.join(RECIPES)}, got {self.recipe!r}")
        defaults = RECIPE_DEFAULTS[self.recipe]
        for name, value in defaults.items():
            if name in ("model", "loss"):
                setattr(self, name, {**value, **(getattr(self, name) or {})})
            elif getattr(self, name) is None:
                setattr(self, name, value)
        self.milestones = tuple(self.milestones)  # type: ignore[arg-type]
        self.validate()

    def validate(self) -> None:
        """Check every setting; raises ``SettingsError`` naming the first bad one."""
        _integer("epochs", self.epochs, 0)
        _finite("minutes", self.minutes, 0)
        _finite("checkpoint_minutes", self.checkpoint_minutes, 0)
        _finite("lr", self.lr, 0, strict=True)
        _finite("momentum", self.momentum, 0)
        _finite("weight_decay", self.weight_decay, 0)
        _finite("gamma", self.gamma, 0, strict=True)
        if not 0 <= _finite("warmup", self.warmup, 0) < 1:
            raise SettingsError(f"warmup must be a fraction of the run in [0, 1), got {self.warmup!r}")
        _finite("attention_lr_scale", self.attention_lr_scale, 0)
        if not 0 <= _finite("random_erasing", self.random_erasing, 0) <= 1:
            raise SettingsError(f"random_erasing must be a probability in [0, 1], got {self.random_erasing!r}")
        _finite("grad_clip", self.grad_clip, 0)
        for name in ("pairs_per_step", "ids_per_batch", "seq_len", "eval_frames"):
            _integer(name, getattr(self, name), 1, 100_000)
        _integer("tracklets_per_id", self.tracklets_per_id, 2, 1000)
        _integer("split", self.split, 0, 10**6)
        _integer("iterations", self.iterations, 0, 64)
        _integer("seed", self.seed, 0, 2**63 - 1)
        _integer("threads", self.threads, 0, 4096)
        for name in ("eval_every", "checkpoint_every"):
            _integer(name, getattr(self, name), 0)
        for m in self.milestones or ():
            _integer("milestones", m, 0)
        for name, allowed in (("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("clip_sampling", CLIP_SAMPLINGS)):
            if getattr(self, name) not in allowed:
                raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("model", "loss", "preprocess"):
            if not isinstance(getattr(self, name), dict):
                raise SettingsError(f"{name} must be a mapping of settings, got {type(getattr(self, name)).__name__}")

    @property
    def uses_pairs(self) -> bool:
        """Whether batches are Siamese pairs (``paper``) rather than P×K identity batches."""
        return self.recipe == "paper"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of every (resolved) setting."""
        d = dataclasses.asdict(self)
        d["milestones"] = list(self.milestones or ())
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of ``to_dict``.

        A config saved before recipes existed is a ``paper`` run. Unknown keys are an error.

        Raises:
            SettingsError: unknown keys, or a bad value (naming the setting).
        """
        if not isinstance(d, dict):
            raise SettingsError(f"training settings must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise SettingsError(f"unknown training settings: {', '.join(sorted(unknown))}")
        d = dict(d)
        d.setdefault("recipe", "paper")
        if d.get("milestones") is not None:
            if not isinstance(d["milestones"], (list, tuple)):
                raise SettingsError(f"milestones must be a list of epochs, got {d['milestones']!r}")
            d["milestones"] = tuple(d["milestones"])
        try:
            return cls(**d)
        except TypeError as exc:
            raise SettingsError(f"invalid training settings: {exc}") from None

    def lr_factor(self, epoch: int, progress: float) -> float:
        """The learning-rate multiplier at ``epoch`` (0-based) and ``progress`` ∈ [0, 1] of the run.

        ``step``: gamma to the number of milestones passed; ``cosine``: from 1 down to
        ``COSINE_FLOOR`` over the run. Either way multiplied by a linear warm-up from 0.1 to 1
        over the first ``warmup`` fraction.
        """
        progress = min(max(progress, 0.0), 1.0)
        if self.schedule == "cosine":
            factor = COSINE_FLOOR + (1 - COSINE_FLOOR) * 0.5 * (1 + math.cos(math.pi * progress))
        else:
            factor = self.gamma ** sum(epoch >= m for m in self.milestones or ())
        if self.warmup and progress < self.warmup:
            factor *= 0.1 + 0.9 * progress / self.warmup
        return factor

    def lr_at(self, epoch: int, progress: float | None = None) -> float:
        """The learning rate in ``epoch``; ``progress`` defaults to ``epoch / epochs``."""
        if progress is None:
            progress = epoch / self.epochs if self.epochs else 0.0
        return float(self.lr) * self.lr_factor(epoch, progress)  # type: ignore[arg-type]


def recipe_summary(recipe: str) -> str:
    """One line saying what a recipe does (for help texts and the Training tab)."""
    d = RECIPE_DEFAULTS[recipe]
    if recipe == "paper":
        return (f"the paper's: Siamese pairs, {d['seq_len']} consecutive frames, SGD lr {d['lr']:g} "
                f"÷10 at epochs {', '.join(map(str, d['milestones']))} of {d['epochs']}")
    return (f"P identities × K tracklets, {d['seq_len']}-frame clips, cross-entropy + triplet, "
            f"Adam lr {d['lr']:g} with warm-up and cosine decay, BatchNorm trunk")
