"""Training health: noticing, in plain words, the ways a run fails while it still looks busy.

A run on real pedestrians can go wrong without an error: the embedding collapses to a
constant (every distance 0; the paper's hinge term then sits at exactly 1.0), the loss
diverges, the identity loss stays at chance (ln N), or attention goes uniform. ``Health``
watches a few cheap statistics of every step and says which of these is happening, with what
to try; a collapse that persists is ``collapsed`` (the run then stops with the weights from
before it, unless told to go on).

Statistics of a batch of video features f (B, D):

* ``spread``: the features' standard deviation across the batch, averaged over dimensions,
  relative to their root-mean-square size; 0 when every tracklet gets the same feature.
* ``distance``: the mean distance between the batch's features.
* ``attention_spread``: the standard deviation of the final attention over a clip's frames,
  averaged over clips (``None`` for heads without attention).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

#: Below this relative spread (and mean distance) the embedding counts as collapsed.
COLLAPSE_SPREAD = 1e-3
#: Steps of collapse in a row after which it counts as persistent (and at least an epoch's worth).
COLLAPSE_PATIENCE = 50
#: The identity loss counts as "at chance" above this fraction of ln(N).
CHANCE_FRACTION = 0.95
#: Attention counts as uniform below this standard deviation over a clip's frames.
UNIFORM_ATTENTION = 0.01
#: Fraction of the run before "still at chance" and "uniform attention" are said (early on
#: both are normal).
SETTLE = 0.25
#: ... and at least this many steps: in a one-epoch run a quarter of MARS's epoch is 32 steps,
#: far too early to call an identity loss "stuck".
SETTLE_STEPS = 200
#: The loss counts as diverging when its moving average rises this much above its lowest.
DIVERGE_RATIO = 1.5


@dataclass
class BatchStats:
    """What ``Health`` looks at in one step."""

    spread: float
    distance: float
    total_loss: float
    id_loss: float | None
    attention_spread: float | None


def batch_stats(features, attention, mask, total_loss: float, id_loss: float | None) -> BatchStats:
    """Compute ``BatchStats`` from a step's features (B, D), attention (B, R, T) and mask (B, T).

    ``attention`` is None for heads that pool frames uniformly (mean, RNN).
    """
    import torch

    with torch.no_grad():
        f = features.detach().float()
        rms = float(f.pow(2).mean().sqrt()) + 1e-12
        spread = float(f.std(0, unbiased=False).mean()) / rms if len(f) > 1 else 1.0
        distance = float(torch.pdist(f).mean()) if len(f) > 1 else 0.0
        att_spread = None
        if attention is not None:
            final = attention[:, -1].detach().float()
            m = mask.float()
            n = m.sum(1).clamp_min(1)
            mean = (final * m).sum(1) / n
            att_spread = float((((final - mean[:, None]) ** 2 * m).sum(1) / n).sqrt().mean())
    return BatchStats(spread, distance, total_loss, id_loss, att_spread)


@dataclass
class Health:
    """Watches a run's steps and reports problems.

    Args:
        num_classes: training identities (chance level of the identity loss is ln N).
        steps_per_epoch: steps in an epoch (a persistent collapse lasts at least one).
    """

    num_classes: int
    steps_per_epoch: int
    recipe: str = ""
    steps: int = 0
    collapsed_steps: int = 0
    loss_ema: float | None = None
    best_loss_ema: float = math.inf
    id_ema: float | None = None
    attention_ema: float | None = None
    warnings: dict[str, str] = field(default_factory=dict)

    @property
    def collapsed(self) -> bool:
        """The embedding has stayed collapsed long enough to stop the run."""
        return self.collapsed_steps >= max(COLLAPSE_PATIENCE, self.steps_per_epoch)

    @property
    def healthy(self) -> bool:
        """No collapse is going on (a good moment to remember the weights)."""
        return self.collapsed_steps == 0

    def update(self, stats: BatchStats, progress: float) -> list[str]:
        """Take one step's statistics; returns the current warnings (plain sentences)."""

        def ema(old: float | None, new: float, k: float = 0.02) -> float:
            return new if old is None else old + k * (new - old)

        self.steps += 1
        settled = progress > SETTLE and self.steps >= SETTLE_STEPS
        # The fast recipe is what the hints recommend: do not recommend it to a run that uses it.
        or_fast = "" if self.recipe == "fast" else ", or --recipe fast"

        if stats.spread < COLLAPSE_SPREAD or stats.distance < COLLAPSE_SPREAD:
            self.collapsed_steps += 1
        else:
            self.collapsed_steps = 0
        if math.isfinite(stats.total_loss):
            self.loss_ema = ema(self.loss_ema, stats.total_loss)
            if progress > 0.02:
                self.best_loss_ema = min(self.best_loss_ema, self.loss_ema)
        if stats.id_loss is not None and math.isfinite(stats.id_loss):
            self.id_ema = ema(self.id_ema, stats.id_loss)
        if stats.attention_spread is not None:
            self.attention_ema = ema(self.attention_ema, stats.attention_spread)

        w: dict[str, str] = {}
        if self.collapsed_steps >= 10:
            w["collapse"] = (f"the embedding has collapsed: every tracklet gets nearly the same feature "
                             f"(spread {stats.spread:.1e}) for {self.collapsed_steps} steps. Try a lower "
                             f"--lr{or_fast}")
        if (self.loss_ema is not None and math.isfinite(self.best_loss_ema) and progress > 0.05
                and self.loss_ema > DIVERGE_RATIO * self.best_loss_ema + 1e-6):
            w["diverging"] = (f"the loss is diverging: its average rose from {self.best_loss_ema:.3f} to "
                              f"{self.loss_ema:.3f}. Try a lower --lr")
        chance = math.log(max(self.num_classes, 2))
        if self.id_ema is not None and settled and self.id_ema > CHANCE_FRACTION * chance:
            w["chance"] = (f"the identity loss is stuck at chance ({self.id_ema:.2f} against ln {self.num_classes} "
                           f"= {chance:.2f}): the network does not tell the training identities apart. Try a "
                           f"lower --lr{or_fast}")
        if self.attention_ema is not None and settled and self.attention_ema < UNIFORM_ATTENTION:
            w["uniform"] = (f"attention is nearly uniform (spread {self.attention_ema:.3f} over a clip's "
                            f"frames): the model pools frames almost equally. Try --attention-lr-scale 10 "
                            f"or a longer run")
        self.warnings = w
        return list(w.values())
