"""Learnt corrections of the training cameras' poses (`pose-optimization: true`).

Pose corrections (gsplat `examples/utils.py` `CameraOptModule`, `simple_trainer.py --pose_opt`).
Training camera i has a 6-vector d_i = (t_i, w_i), zero at the start. Its corrected
camera-to-world pose is

    T_cw' = T_cw @ D(d_i),   D(d) = [[exp([w]x), t], [0, 0, 0, 1]],

so the correction acts in the camera's own frame (OpenCV axes: x right, y down, z forward) as in
gsplat: the camera turns about its own centre by the rotation vector w (radians, axis in camera
coordinates, SO(3) exponential map) and its centre moves by R_cw t (|t| scene units). The
rasterizer takes world-to-camera, so the training render uses viewmat' = D^-1 @ viewmat with
D^-1 = [[R^T, -R^T t], [0, 1]], and the rasterizer's dL/dviewmat carries the loss gradient to d.
gsplat writes the rotation in the 6D representation of Zhou et al. (CVPR 2019); a rotation vector
is a 6-vector in all (as in bundle adjustment) and its norm is the correction angle logged.
The learnt translation is t / extent (the trainer's scene extent): gsplat learns it in a world it
has normalised to about unit size, so its learning rate means the same here at any scene scale,
and a turn and a shift by the same learnt amount move the image comparably (a better conditioned
problem for Adam, which steps every coordinate by about the same amount).

With `start-iteration` the corrections stay zero and their Adam idle up to that step: the first
steps' scene is the initial point cloud, whose errors the corrections would otherwise fit (on
colmap_desk they turned good cameras by 0.08 degrees in the first 90 steps, BENCHMARKS.md). With
`remove-common-motion` every step ends by removing the corrections' common motion of all cameras
(`pose_gauge`).

The learning rate is multiplied by sqrt(B) for B cameras per step, as gsplat's
(`simple_trainer.py`: pose_opt_lr * sqrt(batch_size)); B = 1 changes nothing.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Optional, Sequence

import torch

from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.rotations import rotation_vector_to_matrix
from taichi_3dgs.training.batch_scaling import learning_rate_factor
from taichi_3dgs.training.camera_parameters import AdamOptimized, copy_into
from taichi_3dgs.training.config_sections import PoseOptimizationConfig
from taichi_3dgs.training.optimization import exponential_learning_rate
from taichi_3dgs.training.pose_gauge import remove_common_motion

# Corrections beyond these are no pose error a capture can have, only diverged optimisation: the
# camera has left the scene (a translation in units of the scene extent, a rotation in degrees).
MAX_POSE_SHIFT_EXTENTS = 0.5
MAX_POSE_TURN_DEGREES = 30.0


def correction_transform(corrections: torch.Tensor) -> torch.Tensor:
    """The rigid transforms D(d) = [[exp([w]x), t], [0, 0, 0, 1]] of pose corrections d = (t, w).

    Args:
        corrections: [..., 6] float tensor: translation t (scene units, camera frame), then the
            rotation vector w (radians, camera frame).

    Returns:
        [..., 4, 4] tensor of the same dtype and device (camera' -> camera).
    """
    rotation = rotation_vector_to_matrix(corrections[..., 3:])
    top = torch.cat([rotation, corrections[..., :3, None]], dim=-1)
    bottom = torch.zeros_like(top[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([top, bottom], dim=-2)


def corrected_viewmat(viewmat: torch.Tensor, correction: torch.Tensor) -> torch.Tensor:
    """World-to-camera matrix of a camera whose camera-to-world pose is corrected by `correction`.

    viewmat' = D^-1 @ viewmat with D^-1 = [[R^T, -R^T t], [0, 1]], the inverse of
    T_cw' = T_cw @ D(correction) (module docstring), written in closed form so autograd does not
    go through a general matrix inverse.

    Args:
        viewmat: [4, 4] float tensor, world-to-camera.
        correction: [6] tensor of the same dtype and device (t, w).

    Returns:
        [4, 4] tensor, differentiable in both arguments.
    """
    rotation_t = rotation_vector_to_matrix(correction[3:]).T
    top = torch.cat([rotation_t, -(rotation_t @ correction[:3])[:, None]], dim=1)
    inverse = torch.cat([top, viewmat.new_tensor([[0.0, 0.0, 0.0, 1.0]])], dim=0)
    return inverse @ viewmat


class PoseCorrections(AdamOptimized):
    """Learnable pose corrections of the training cameras, with their Adam (gsplat pose_opt).

    Attributes:
        corrections: float32 [C, 6] leaf tensor (t / scene_extent, w) per training camera, in the
            cameras' order, zero at the start; requires grad.
        scene_extent: world units per unit of the learnt translation (> 0).
        optimizer: Adam over `corrections` with weight decay `config.weight_decay` (L2 towards
            zero) and the default betas and eps, as gsplat's pose optimizer.
        common_motion: None, or the float64 [6C, K] basis of `pose_gauge.common_motion_basis`
            whose span every step removes (`config.remove_common_motion`).
        started: False up to `config.start_iteration` (set by `set_learning_rate`): `step` then
            only clears the gradients, so the corrections stay zero and Adam's moments empty.
    """

    def __init__(self, num_cameras: int, config: PoseOptimizationConfig, num_iterations: int, scene_extent: float,
                 device: torch.device | str, batch_size: int = 1, common_motion: Optional[torch.Tensor] = None):
        self.config = config
        self.common_motion = common_motion
        self.started = config.start_iteration == 0
        self.num_iterations = num_iterations
        self.scene_extent = scene_extent
        self.rate_factor = learning_rate_factor(batch_size)
        self.corrections = torch.zeros(num_cameras, 6, dtype=torch.float32, device=device, requires_grad=True)
        self.optimizer = torch.optim.Adam([self.corrections], lr=config.learning_rate,
                                          weight_decay=config.weight_decay)

    def world_corrections(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """[C, 6] (t, w) in `dtype`: the corrections with the translation in world units
        (differentiable)."""
        corrections = self.corrections.to(dtype)
        return corrections * corrections.new_tensor([self.scene_extent] * 3 + [1.0] * 3)

    def viewmat(self, index: int, viewmat: torch.Tensor) -> torch.Tensor:
        """The corrected world-to-camera [4, 4] of training camera `index` (differentiable)."""
        return corrected_viewmat(viewmat, self.world_corrections()[index])

    def step(self) -> None:
        """Adam step, gradients cleared; then, with a `common_motion` basis, the corrections' common
        motion of all cameras removed (`pose_gauge.remove_common_motion`)."""
        if not self.started:
            self.optimizer.zero_grad(set_to_none=True)
            return
        super().step()
        if self.common_motion is not None:
            remove_common_motion(self.corrections, self.common_motion)

    def set_learning_rate(self, step: int) -> None:
        """Log-linear decay from learning-rate to learning-rate-final over the run (gsplat:
        ExponentialLR with gamma 0.01 ** (1 / max_steps)), times sqrt(B); a function of `step`, so
        resuming gives the same rates."""
        self.started = step > self.config.start_iteration
        self._set_learning_rate(self.rate_factor * exponential_learning_rate(
            step, self.config.learning_rate, self.config.learning_rate_final, self.num_iterations))

    @torch.no_grad()
    def corrected_records(self, records: Sequence[CameraRecord]) -> list[CameraRecord]:
        """`records` (the training cameras, in order) with T_pointcloud_camera = T @ D(d_i),
        composed in float64."""
        if len(records) != self.corrections.shape[0]:
            raise ValueError(f"{len(records)} camera records for {self.corrections.shape[0]} pose corrections")
        deltas = correction_transform(self.world_corrections(torch.float64).cpu()).numpy()
        return [dataclasses.replace(record, T_pointcloud_camera=record.T_pointcloud_camera @ delta)
                for record, delta in zip(records, deltas)]

    @torch.no_grad()
    def mean_correction(self) -> tuple[float, float]:
        """(mean rotation angle in degrees, mean camera-centre shift in scene units) over the
        cameras: |w| and |t| (the centre moves by R_cw t, whose norm is |t|)."""
        corrections = self.world_corrections(torch.float64)
        angle = corrections[:, 3:].norm(dim=1).mean()
        return math.degrees(float(angle)), float(corrections[:, :3].norm(dim=1).mean())

    @torch.no_grad()
    def largest_corrections(self) -> tuple[tuple[int, float], tuple[int, float]]:
        """((camera, shift in scene extents), (camera, turn in degrees)): the cameras whose
        correction moves their centre the most (|t| / scene_extent) and turns them the most (|w|)."""
        shifts, turns = self.corrections[:, :3].norm(dim=1), self.corrections[:, 3:].norm(dim=1)
        shift_index, turn_index = int(shifts.argmax()), int(turns.argmax())
        return (shift_index, float(shifts[shift_index])), (turn_index, math.degrees(float(turns[turn_index])))

    def state_dict(self) -> dict[str, Any]:
        """{"corrections": [C, 6] tensor (as learnt: t / scene_extent, w), "optimizer": Adam's state_dict}."""
        return {"corrections": self.corrections.detach().clone(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore `state_dict()`'s output.

        Raises:
            ValueError: the corrections have another shape (another number of cameras).
            KeyError / RuntimeError: a damaged state (the trainer names the checkpoint key).
        """
        copy_into(self.corrections, state["corrections"], "corrections")
        self.optimizer.load_state_dict(state["optimizer"])
