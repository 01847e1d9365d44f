"""Learnt affine colour transforms of the training images (`exposure-compensation: true`).

Exposure (official 3DGS `GaussianModel._exposure`, `train.py --train_test_exp`). Training image i
has a 3x4 affine colour transform M_i = [A_i | b_i], the identity at the start; the render that the
loss compares with image i is  render @ A_i^T + b_i  (each pixel colour c becomes A_i c + b_i),
not clamped, as the trainer's renders. The official renderer computes `render @ M[:3, :3]`, i.e.
stores A^T; `exposure.json` here stores A, the matrix acting on colour column vectors.
The transforms and the scene's colours share a free gauge: for any invertible colour map
c -> G c + h, the scene coloured G c + h with every M_i composed with its inverse renders every
training image alike, so the official free transforms let the plain renders' colours drift from
the photos' (BENCHMARKS.md: 5.7 dB on colmap_desk). With `keep-mean-identity` (the default) each
step ends by subtracting mean_i(M_i) - [I | 0] from every M_i, the least-squares projection onto
transforms averaging to the identity: the scene keeps the colours of the average training image.

The learning rate is multiplied by sqrt(B) for B cameras per step, as gsplat's pose rate
(`simple_trainer.py`: pose_opt_lr * sqrt(batch_size)); B = 1 changes nothing.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch

from taichi_3dgs.training.batch_scaling import learning_rate_factor
from taichi_3dgs.training.camera_parameters import AdamOptimized, copy_into
from taichi_3dgs.training.config_sections import ExposureCompensationConfig
from taichi_3dgs.training.optimization import exponential_learning_rate


class ExposureTransforms(AdamOptimized):
    """Learnable affine colour transform per training image, with its Adam (official exposure).

    Attributes:
        image_names: the training images' file names, in the cameras' order (exposure.json keys).
        transforms: float32 [C, 3, 4] leaf tensor [A | b] per image, identity at the start.
        optimizer: Adam over `transforms` with the default betas and eps, as the official
            `exposure_optimizer`; its rate is set every step by `set_learning_rate`.
    """

    def __init__(self, image_names: Sequence[str], config: ExposureCompensationConfig, num_iterations: int,
                 device: torch.device | str, batch_size: int = 1):
        self.config = config
        self.num_iterations = num_iterations
        self.rate_factor = learning_rate_factor(batch_size)
        self.image_names = list(image_names)
        identity = torch.eye(3, 4, dtype=torch.float32, device=device)
        self.transforms = identity.repeat(len(self.image_names), 1, 1).requires_grad_(True)
        self.optimizer = torch.optim.Adam([self.transforms], lr=config.learning_rate)

    def apply(self, index: int, image: torch.Tensor) -> torch.Tensor:
        """image @ A^T + b for training image `index`.

        Args:
            image: [H, W, 3] float32 render (linear in the transform, not clamped).

        Returns:
            [H, W, 3] tensor, differentiable in the image and the transform.
        """
        transform = self.transforms[index]
        return image @ transform[:, :3].T + transform[:, 3]

    def set_learning_rate(self, step: int) -> None:
        """The official `get_expon_lr_func(exposure_lr_init, exposure_lr_final, delay steps,
        delay mult, max_steps=iterations)` at `step`, times sqrt(B)."""
        cfg = self.config
        self._set_learning_rate(self.rate_factor * exponential_learning_rate(
            step, cfg.learning_rate, cfg.learning_rate_final, self.num_iterations, cfg.learning_rate_delay_steps,
            cfg.learning_rate_delay_mult))

    def step(self) -> None:
        """Adam step on the accumulated gradients plus `weight-decay` x (T - [I | 0]) (L2 towards the
        identity, every transform), gradients cleared; then, with `keep-mean-identity`, every
        transform shifted so that their mean is [I | 0]."""
        identity = torch.eye(3, 4, dtype=self.transforms.dtype, device=self.transforms.device)
        if self.config.weight_decay > 0:
            with torch.no_grad():
                if self.transforms.grad is None:
                    self.transforms.grad = torch.zeros_like(self.transforms)
                self.transforms.grad += self.config.weight_decay * (self.transforms - identity)
        super().step()
        if self.config.keep_mean_identity:
            with torch.no_grad():
                self.transforms -= self.transforms.mean(dim=0) - identity

    @torch.no_grad()
    def as_arrays(self) -> dict[str, np.ndarray]:
        """{image name: float64 [3, 4] [A | b]} in the cameras' order."""
        transforms = self.transforms.detach().to("cpu", torch.float64).numpy()
        return dict(zip(self.image_names, transforms))

    def state_dict(self) -> dict[str, Any]:
        """{"image_names": [...], "transforms": [C, 3, 4] tensor, "optimizer": Adam's state_dict}."""
        return {"image_names": list(self.image_names), "transforms": self.transforms.detach().clone(),
                "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`'s output.

        Raises:
            ValueError: the image names or the transforms' shape differ from this run's.
            KeyError / RuntimeError: a damaged state (the trainer names the checkpoint key).
        """
        if list(state["image_names"]) != self.image_names:
            raise ValueError("its images are not this run's training images")
        copy_into(self.transforms, state["transforms"], "transforms")
        self.optimizer.load_state_dict(state["optimizer"])
