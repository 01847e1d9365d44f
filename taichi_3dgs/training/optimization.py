"""Adam over the Gaussian parameters and the means' learning-rate schedule.

One `torch.optim.Adam` (or, with `optimizer: sparse-adam`, its subclass `SparseGaussianAdam`, which
steps the visible Gaussians only) with one param group per parameter, each group tagged with the
parameter's name, as the official `GaussianModel.training_setup`; with B cameras per step, rates,
epsilon and betas scaled as gsplat's (`batch_scaling`). Densification resizes the parameters and
their Adam moments together through `strategies.ops`.
"""
from __future__ import annotations

import math

import torch

from taichi_3dgs.scene.model import PARAMETER_NAMES, GaussianModel
from taichi_3dgs.training.batch_scaling import adam_betas, adam_eps, learning_rate_factor
from taichi_3dgs.training.config_sections import LearningRateConfig
from taichi_3dgs.training.sparse_adam import SparseGaussianAdam


def make_optimizer(model: GaussianModel, rates: LearningRateConfig, scene_extent: float,
                   batch_size: int = 1, kind: str = "adam") -> torch.optim.Adam:
    """Adam with the official per-parameter learning rates; the means' rate is times `scene_extent`.

    For B = `batch_size` cameras per step (gsplat's rules, `batch_scaling`): rates x sqrt(B),
    epsilon / sqrt(B), betas 1 - B (1 - beta); B = 1 is the official optimizer exactly.

    Args:
        kind: the config's `optimizer`: "adam" (torch.optim.Adam) or "sparse-adam"
            (`sparse_adam.SparseGaussianAdam`: its `step(visibility)` updates the visible
            Gaussians only); both with the same groups, rates, eps, betas and state layout.

    Raises:
        ValueError: batch_size outside 1..MAX_BATCH_SIZE, or an unknown kind.
    """
    factor = learning_rate_factor(batch_size)
    lr = {
        "means": rates.means * scene_extent * factor,
        "quats": rates.quats * factor,
        "log_scales": rates.scales * factor,
        "opacity_logits": rates.opacity * factor,
        "sh_dc": rates.sh_dc * factor,
        "sh_rest": rates.sh_rest * factor,
    }
    groups = [{"params": [getattr(model, name)], "lr": lr[name], "name": name} for name in PARAMETER_NAMES]
    classes = {"adam": torch.optim.Adam, "sparse-adam": SparseGaussianAdam}
    if kind not in classes:
        raise ValueError(f"optimizer {kind!r}: expected one of {', '.join(map(repr, classes))}")
    return classes[kind](groups, lr=0.0, eps=adam_eps(rates.adam_eps, batch_size), betas=adam_betas(batch_size))


def exponential_learning_rate(step: int, lr_init: float, lr_final: float, max_steps: int,
                              delay_steps: int = 0, delay_mult: float = 1.0) -> float:
    """The official `get_expon_lr_func` (from Plenoxels) at `step`.

    exp((1 - t) log(lr_init) + t log(lr_final)), t = step / max_steps clamped to [0, 1]; with
    delay_steps > 0 times delay_mult + (1 - delay_mult) sin(pi/2 clamp(step / delay_steps, 0, 1)).

    Args:
        lr_init, lr_final: rates > 0 at t = 0 and t = 1.
        max_steps: steps of the decay, > 0.
    """
    delay = 1.0
    if delay_steps > 0:
        delay = delay_mult + (1.0 - delay_mult) * math.sin(0.5 * math.pi * min(max(step / delay_steps, 0.0), 1.0))
    t = min(max(step / max_steps, 0.0), 1.0)
    log_lr = (1.0 - t) * math.log(lr_init) + t * math.log(lr_final)
    return delay * math.exp(log_lr)


def means_learning_rate(step: int, rates: LearningRateConfig, scene_extent: float, num_iterations: int,
                        batch_size: int = 1) -> float:
    """Learning rate of the means at `step` (1-based): log-linear from `means` to `means-final`.

    `exponential_learning_rate` without delay, both rates times the scene extent and sqrt(B) for
    B = `batch_size` cameras per step (`step`, `num_iterations` and `means_max_steps` then count
    optimisation steps: `batch_scaling.schedule_in_batches`).
    """
    max_steps = rates.means_max_steps or num_iterations
    lr = exponential_learning_rate(step, rates.means, rates.means_final, max_steps) * scene_extent
    return lr * learning_rate_factor(batch_size)


def param_group(optimizer: torch.optim.Optimizer, name: str) -> dict:
    """The param group of parameter `name`.

    Raises:
        KeyError: no group has that name.
    """
    for group in optimizer.param_groups:
        if group.get("name") == name:
            return group
    raise KeyError(f"optimizer has no param group named {name!r}")


def set_learning_rate(optimizer: torch.optim.Optimizer, name: str, lr: float) -> None:
    """Set the learning rate of parameter `name`."""
    param_group(optimizer, name)["lr"] = lr
