"""What changes with the batch size B, the number of training cameras in one optimisation step.

The rules of gsplat's `examples/simple_trainer.py` (`create_splats_with_optimizers`, `adjust_steps`),
which follow the square-root scaling rule for Adam (Malladi et al. 2022, "On the SDEs and Scaling
Rules for Adaptive Gradient Algorithms"; gsplat notes the result is not exactly equivalent):

- learning rates x sqrt(B), Adam's epsilon / sqrt(B), Adam's betas 1 - B (1 - beta). beta1 =
  1 - B x 0.1 reaches 0 at B = 10, so B is at most `MAX_BATCH_SIZE` = 9 (gsplat leaves this as a
  TODO; here the config refuses larger B).
- step counts / B. The config's step counts (its fields marked `steps=True`, listed in
  `config.STEP_COUNT_KEYS`) count images, i.e. single-camera steps; the trainer divides each by B, rounded up, so one config trains on the same number of
  images (rounded up to whole batches) with the same schedule in images at any B. gsplat asks the
  user for the factor instead (`--steps_scaler`).
- the densification statistic: the loss is the mean over the B views, so each view's view-space
  gradient is 1/B of what that view alone would give; `DefaultStrategy` multiplies it by B, as
  gsplat's `DefaultStrategy._update_state` multiplies by `n_cameras`, so the official threshold
  (2e-4) keeps its meaning.

B = 1 changes nothing: every factor is exactly 1 and the betas are exactly (0.9, 0.999).
This module imports no torch, so the config can check B; it knows the config only through the
field markers (`config_loader.replace_marked`).
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Sequence, TypeVar

from taichi_3dgs.training.config_loader import replace_marked

Config = TypeVar("Config")

# Adam's (beta1, beta2) for one camera per step: torch's defaults, which the official code uses.
ADAM_BETAS = (0.9, 0.999)


def _largest_batch_size(betas: Sequence[float]) -> int:
    """The largest B with 1 - B (1 - beta) > 0 for every beta, in exact decimal arithmetic (in
    floats, 1 - 10 x (1 - 0.9) is 2.2e-16 instead of 0)."""
    return min(math.ceil(1 / (1 - Fraction(str(beta)))) - 1 for beta in betas)


MAX_BATCH_SIZE = _largest_batch_size(ADAM_BETAS)

def learning_rate_factor(batch_size: int) -> float:
    """sqrt(B): every learning rate is multiplied by it (the means' whole schedule too)."""
    return math.sqrt(batch_size)


def adam_eps(eps: float, batch_size: int) -> float:
    """Adam's epsilon for batch size B: eps / sqrt(B)."""
    return eps / math.sqrt(batch_size)


def adam_betas(batch_size: int) -> tuple[float, float]:
    """Adam's (beta1, beta2) for batch size B: 1 - B (1 - beta) each ((0.9, 0.999) at B = 1).

    Raises:
        ValueError: B < 1 or B > MAX_BATCH_SIZE (a beta would be <= 0).
    """
    if not 1 <= batch_size <= MAX_BATCH_SIZE:
        raise ValueError(f"batch size {batch_size}: Adam's betas 1 - B (1 - beta) need 1 <= B <= {MAX_BATCH_SIZE}")
    beta1, beta2 = (1.0 - batch_size * (1.0 - beta) for beta in ADAM_BETAS)
    return beta1, beta2


def steps_in_batches(count: int | None, batch_size: int) -> int | None:
    """A count of single-camera steps as optimisation steps of B cameras: ceil(count / B); None
    stays None (a key whose null means "use another key")."""
    return None if count is None else -(-count // batch_size)


def schedule_in_batches(config: Config) -> Config:
    """`config` (a `TrainConfig`) with every step count (fields marked `steps=True`) in optimisation
    steps of `batch-size` cameras (`steps_in_batches`); `config` itself when batch-size is 1.

    The trainer runs its loop on this copy; checkpoints and the written train_config.yaml keep the
    user's config.
    """
    batch_size = config.batch_size
    if batch_size == 1:
        return config
    return replace_marked(config, "steps", lambda count: steps_in_batches(count, batch_size))
