"""The densification strategy protocol: what the trainer calls around each optimisation step.

The rasterizer knows nothing about strategies (the design of gsplat's `strategy/base.py`). Per
step of a batch of B views the trainer calls, in this order (the call-order contract):

    loss = mean over the B views of the photometric terms + strategy.regularization_loss(model)
    loss.backward()                                                    # view by view
    strategy.step_post_backward(step, renders, batch_size, world)      # gather statistics
    optimizer.step()
    # (evaluation, when due, sees the parameters before refinement)
    refined = strategy.step_post_optimizer(step, model, optimizer, means_lr, generator)  # not after the last step

`generator` is the run's CPU `torch.Generator`: random numbers are drawn on the CPU and moved to
the parameters' device, so a run is reproducible from its seed on any device. In data-parallel
training (`distributed.World`) every process holds the same model and generator state, and
`step_post_backward` sums each step's statistics over the processes, so every decision comes out
the same in every process. A strategy changes the Gaussians only through the row operations of
`strategies.ops`, which keep the optimizer's state in step with the parameters.
Steps count from 1, as the official `iteration`.

A new strategy is one module of this package (a class following `Strategy`), one config section
(a dataclass field of `TrainConfig` marked `strategy_section("name")`) and one line in
`strategies.STRATEGIES`.
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence

import torch

from taichi_3dgs.scene.model import GaussianModel
from taichi_3dgs.training.distributed import SINGLE_PROCESS, World


class Strategy(Protocol):
    """What the trainer calls; see the module docstring for the order.

    Attributes:
        absgrad: the renders given to `step_post_backward` must carry `means2d_absgrad`
            (`rasterize(absgrad=True)`).
    """

    absgrad: bool

    @classmethod
    def for_run(cls, settings: Any, scene_extent: float, white_background: bool) -> "Strategy":
        """The strategy of a run: `settings` is its config section, `scene_extent` in world units,
        `white_background` true when the background colour is (1, 1, 1)."""

    def regularization_loss(self, model: GaussianModel) -> torch.Tensor | float:
        """Extra loss term added once per step to the photometric loss (0.0 for none)."""

    def step_post_backward(self, step: int, renders: Sequence[tuple[Any, int, int]], batch_size: int = 1,
                           world: World = SINGLE_PROCESS) -> None:
        """Gather statistics from this process's renders of the step, (out, width, height) each
        (after `loss.backward()`); the loss was the mean over `batch_size` views in all processes."""

    def step_post_optimizer(
        self,
        step: int,
        model: GaussianModel,
        optimizer: torch.optim.Optimizer,
        means_lr: float,
        generator: torch.Generator,
    ) -> bool:
        """Change the Gaussians (and their Adam state) after the optimizer step; True if refined."""

    def state_dict(self) -> dict[str, Any]:
        """Running state, for checkpoints."""

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Restore `state_dict()`'s output onto `device`."""
