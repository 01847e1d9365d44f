"""The trainer's hooks for the per-camera quantities learnt with the scene.

Training camera poses (`pose_corrections`) and per-image exposure (`exposure_transforms`) are both
optional (`pose-optimization`, `exposure-compensation`, off by default), each has its own Adam, and
the scene never depends on them: validation, the saved scenes and every renderer use the cameras
as given and the renders as rasterized. With both off the hooks return their inputs unchanged and
nothing is learnt, written or checkpointed.
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
from taichi_3dgs.training.dataset import scene_extent
from taichi_3dgs.training.exposure_file import EXPOSURE_JSON, write_exposure_json
from taichi_3dgs.training.exposure_transforms import ExposureTransforms
from taichi_3dgs.training.pose_corrections import MAX_POSE_SHIFT_EXTENTS, MAX_POSE_TURN_DEGREES, PoseCorrections
from taichi_3dgs.training.pose_gauge import common_motion_basis

TRAIN_JSON = "train.json"
# Checkpoint keys of the two parts (present only when the part is on).
POSE_KEY = "pose_optimization"
EXPOSURE_KEY = "exposure_compensation"


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
            pose_config, extent = config.pose_optimization_config, scene_extent(self.records)
            common_motion = None
            if pose_config.remove_common_motion:
                poses = np.stack([record.T_pointcloud_camera for record in self.records])
                common_motion = common_motion_basis(poses[:, :3, :3], poses[:, :3, 3], extent).to(device)
            self.poses = PoseCorrections(len(train_views), pose_config, config.num_iterations, extent, device,
                                         config.batch_size, common_motion)
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
