"""Per-camera quantities learnt with the scene: training camera poses and per-image exposure.

Both are optional (`pose-optimization`, `exposure-compensation`, off by default), each has its own
Adam, and the scene never depends on them: validation, the saved scenes and every renderer use the
cameras as given and the renders as rasterized. With both off the trainer's hooks return their
inputs unchanged and nothing is learnt, written or checkpointed.

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

Both learning rates are multiplied by sqrt(B) for B cameras per step, as gsplat's pose rate
(`simple_trainer.py`: pose_opt_lr * sqrt(batch_size)); B = 1 changes nothing.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from taichi_3dgs.data.cameras import CameraRecord, write_cameras_json
from taichi_3dgs.data.views import View
from taichi_3dgs.training.checkpoint import restoring
from taichi_3dgs.training.config import TrainConfig
from taichi_3dgs.training.config_sections import ExposureCompensationConfig, PoseOptimizationConfig
from taichi_3dgs.training.batch_scaling import learning_rate_factor
from taichi_3dgs.training.dataset import scene_extent
from taichi_3dgs.training.exposure_file import EXPOSURE_JSON, write_exposure_json
from taichi_3dgs.training.optimization import exponential_learning_rate
from taichi_3dgs.rotations import rotation_vector_to_matrix

TRAIN_JSON = "train.json"
# Checkpoint keys of the two parts (present only when the part is on).
POSE_KEY = "pose_optimization"
# Corrections beyond these are no pose error a capture can have, only diverged optimisation: the
# camera has left the scene (a translation in units of the scene extent, a rotation in degrees).
MAX_POSE_SHIFT_EXTENTS = 0.5
MAX_POSE_TURN_DEGREES = 30.0
EXPOSURE_KEY = "exposure_compensation"


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


class _AdamOptimized:
    """The common part of both corrections: one tensor learnt with its own Adam (`optimizer`)."""

    optimizer: torch.optim.Adam

    def _set_learning_rate(self, lr: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def step(self) -> None:
        """Adam step on the accumulated gradients, then clear them."""
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)


class PoseCorrections(_AdamOptimized):
    """Learnable pose corrections of the training cameras, with their Adam (gsplat pose_opt).

    Attributes:
        corrections: float32 [C, 6] leaf tensor (t / scene_extent, w) per training camera, in the
            cameras' order, zero at the start; requires grad.
        scene_extent: world units per unit of the learnt translation (> 0).
        optimizer: Adam over `corrections` with weight decay `config.weight_decay` (L2 towards
            zero) and the default betas and eps, as gsplat's pose optimizer.
    """

    def __init__(self, num_cameras: int, config: PoseOptimizationConfig, num_iterations: int, scene_extent: float,
                 device: torch.device | str, batch_size: int = 1):
        self.config = config
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

    def set_learning_rate(self, step: int) -> None:
        """Log-linear decay from learning-rate to learning-rate-final over the run (gsplat:
        ExponentialLR with gamma 0.01 ** (1 / max_steps)), times sqrt(B); a function of `step`, so
        resuming gives the same rates."""
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
        _copy_into(self.corrections, state["corrections"], "corrections")
        self.optimizer.load_state_dict(state["optimizer"])


class ExposureTransforms(_AdamOptimized):
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
        _copy_into(self.transforms, state["transforms"], "transforms")
        self.optimizer.load_state_dict(state["optimizer"])


def _copy_into(parameter: torch.Tensor, value: Any, name: str) -> None:
    if not isinstance(value, torch.Tensor) or value.shape != parameter.shape:
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"'{name}' is {shape}; expected a tensor of shape {tuple(parameter.shape)}")
    with torch.no_grad():
        parameter.copy_(value)


class CameraOptimization:
    """The trainer's hooks for pose optimisation and exposure compensation.

    Either part is None when its config key is off; every hook then leaves its input as it is, so
    a run with both off renders, steps and writes exactly as without this class.

    Attributes:
        poses: `PoseCorrections` of the training cameras, or None.
        exposure: `ExposureTransforms` of the training images, or None.
    """

    def __init__(self, config: TrainConfig, train_records: Sequence[CameraRecord], train_views: Sequence[View],
                 device: torch.device | str, source: str = "<config>"):
        """Set up the parts `config` turns on, for the training cameras in their file order.

        Raises:
            ValueError: exposure compensation is on and two training images share a file name
                (exposure.json is keyed by it); the message names the camera JSON and both records.
        """
        self.records = list(train_records)
        self.poses: Optional[PoseCorrections] = None
        self.exposure: Optional[ExposureTransforms] = None
        if config.pose_optimization:
            self.poses = PoseCorrections(len(train_views), config.pose_optimization_config, config.num_iterations,
                                         scene_extent(self.records), device, config.batch_size)
        if config.exposure_compensation:
            names = [view.name for view in train_views]
            first: dict[str, int] = {}
            for index, name in enumerate(names):
                if name in first:
                    raise ValueError(f"{config.train_dataset_json_path}: records {first[name]} and {index} both have "
                                     f"an image named {name!r}; {source} key 'exposure-compensation' needs unique "
                                     "image file names (exposure.json is keyed by them)")
                first[name] = index
            self.exposure = ExposureTransforms(names, config.exposure_compensation_config, config.num_iterations,
                                               device, config.batch_size)

    def training_view(self, index: int, view: View) -> View:
        """Training view `index` with its corrected viewmat (differentiable), or `view` itself."""
        if self.poses is None:
            return view
        return dataclasses.replace(view, viewmat=self.poses.viewmat(index, view.viewmat))

    def compensate(self, index: int, image: torch.Tensor) -> torch.Tensor:
        """The render [H, W, 3] of training view `index` as the loss sees it: with its exposure
        transform, or `image` itself."""
        return image if self.exposure is None else self.exposure.apply(index, image)

    def set_learning_rates(self, step: int) -> None:
        """Set both parts' learning rates for `step` (1-based, as the means' rate)."""
        for part in self._parts():
            part.set_learning_rate(step)

    def step(self) -> None:
        """Adam step of both parts (after backward), gradients cleared."""
        for part in self._parts():
            part.step()

    def parameters(self) -> list[torch.Tensor]:
        """The learnt tensors (for gradient reduction across processes); empty when both are off."""
        tensors = []
        if self.poses is not None:
            tensors.append(self.poses.corrections)
        if self.exposure is not None:
            tensors.append(self.exposure.transforms)
        return tensors

    def checkpoint_entries(self) -> dict[str, Any]:
        """The checkpoint keys of the parts that are on: POSE_KEY, EXPOSURE_KEY -> their state."""
        entries = {}
        if self.poses is not None:
            entries[POSE_KEY] = self.poses.state_dict()
        if self.exposure is not None:
            entries[EXPOSURE_KEY] = self.exposure.state_dict()
        return entries

    def load_checkpoint(self, payload: dict[str, Any], path: Path) -> None:
        """Restore the parts that are on from a checkpoint payload read from `path`.

        Raises:
            ValueError: the key is missing or its state does not fit this run; the message
                names the file and the key.
        """
        for key, part in ((POSE_KEY, self.poses), (EXPOSURE_KEY, self.exposure)):
            if part is not None:
                with restoring(path, key):
                    part.load_state_dict(payload[key])

    def write_outputs(self, output_dir: Path) -> None:
        """Write the refined training cameras to `<output_dir>/train.json` (pose optimisation) and
        the transforms to `<output_dir>/exposure.json` (exposure compensation), atomically."""
        if self.poses is not None:
            write_cameras_json(Path(output_dir) / TRAIN_JSON, self.poses.corrected_records(self.records))
        if self.exposure is not None:
            write_exposure_json(Path(output_dir) / EXPOSURE_JSON, self.exposure.as_arrays())

    def log(self, writer, step: int) -> None:
        """TensorBoard scalars `pose/mean rotation correction deg` and `pose/mean translation
        correction` (scene units) when pose optimisation is on."""
        if self.poses is not None:
            degrees, translation = self.poses.mean_correction()
            writer.add_scalar("pose/mean_rotation_correction_deg", degrees, step)
            writer.add_scalar("pose/mean_translation_correction", translation, step)

    def runaway_pose(self) -> Optional[str]:
        """A sentence naming the training camera whose pose correction left the scene (a shift
        over MAX_POSE_SHIFT_EXTENTS scene extents, or a turn over MAX_POSE_TURN_DEGREES, or a
        non-finite one), or None (also when pose optimisation is off)."""
        if self.poses is None:
            return None
        (shifted, shift), (turned, turn) = self.poses.largest_corrections()
        if math.isfinite(shift) and math.isfinite(turn) and shift <= MAX_POSE_SHIFT_EXTENTS \
                and turn <= MAX_POSE_TURN_DEGREES:
            return None
        index, what = ((shifted, f"moved by {shift:.3g} scene extents") if not shift <= MAX_POSE_SHIFT_EXTENTS
                       else (turned, f"turned by {turn:.3g} degrees"))
        rate = self.poses.config.learning_rate
        return (f"pose optimisation {what} training camera {index} ({Path(self.records[index].image_path).name}), "
                f"beyond any error of a captured pose ({MAX_POSE_SHIFT_EXTENTS} extents, {MAX_POSE_TURN_DEGREES:g} "
                f"degrees): the corrections diverged; lower pose-optimization-config.learning-rate ({rate:g})")

    def _parts(self) -> list:
        return [part for part in (self.poses, self.exposure) if part is not None]
