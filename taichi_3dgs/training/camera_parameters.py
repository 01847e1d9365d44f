"""A per-camera tensor learnt beside the scene with its own Adam.

The common part of `pose_corrections.PoseCorrections` and `exposure_transforms.ExposureTransforms`:
one leaf tensor with a row per training camera, its own `torch.optim.Adam`, the learning rate set
every step by the owner, and a checkpoint restore that checks the tensor's shape.
"""
from __future__ import annotations

from typing import Any

import torch


class AdamOptimized:
    """One tensor learnt with its own Adam (`optimizer`); subclasses create both."""

    optimizer: torch.optim.Adam

    def _set_learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self) -> None:
        """Adam step on the accumulated gradients, then clear them."""
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


def copy_into(parameter: torch.Tensor, value: Any, name: str) -> None:
    """Copy checkpointed `value` into the leaf tensor `parameter` (no grad).

    Raises:
        ValueError: `value` is not a tensor of `parameter`'s shape; the message names `name`.
    """
    if not isinstance(value, torch.Tensor) or value.shape != parameter.shape:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"'{name}' is {shape}; expected a tensor of shape {tuple(parameter.shape)}")
    with torch.no_grad():
        parameter.copy_(value)
