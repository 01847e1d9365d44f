"""Several trained scenes as independently posed objects, merged into one Gaussian set per frame.

Each object keeps its scene in its own (object) frame and a rigid pose `T_world_object`. Before a
frame is rendered every visible object is moved into the world frame and all Gaussians are
concatenated, so the rasterizer's per-tile depth sort orders Gaussians of different objects
correctly (no per-object compositing).

Moving a scene by T = [[R, t], [0, 1]] (Kerbl et al. 2023: a Gaussian is a mean, a covariance
R_g S S^T R_g^T and view-dependent SH colour):
    means'     = R means + t
    quats'     = q(R) * quats            (Hamilton product, w x y z: R_g' = R R_g)
    log_scales unchanged, opacity unchanged
    sh_coeffs' = `rotate_sh(sh_coeffs, R)` (colour along world d = old colour along R^T d).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from taichi_3dgs.rotations import quaternion_multiply, rotation_matrix_to_quaternion
from taichi_3dgs.scene.color_conversion import sigmoid_to_linear
from taichi_3dgs.scene.gaussians import TENSOR_FIELDS, GaussianScene
from taichi_3dgs.scene.io import read_scene
from taichi_3dgs.viewer.camera_paths import scene_bounds
from taichi_3dgs.viewer.geometry import check_rigid
from taichi_3dgs.viewer.sh_rotation import rotate_sh


@dataclass
class SceneObject:
    """One trained scene placed in the world.

    Attributes:
        name: label for messages and screenshots (usually the file name).
        scene: the Gaussians in the object frame (the frame of the file).
        T_world_object: [4, 4] float64 rigid pose, object -> world; identity = as in the file.
        visible: hidden objects are left out of the merged scene.
        center: [3] float64 pivot in the object frame for rotations (default: the `scene_bounds`
            centre, the per-axis median of the means, which ignores the far-away floaters trained
            scenes carry; the origin for an empty scene).
    """

    name: str
    scene: GaussianScene
    T_world_object: np.ndarray = field(default_factory=lambda: np.eye(4))
    visible: bool = True
    center: np.ndarray | None = None
    _world_cache: tuple[bytes, GaussianScene] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        self.T_world_object = check_rigid(self.T_world_object, f"{self.name}: T_world_object").copy()
        if self.center is None:
            self.center = scene_bounds(self.scene.means)[0]

    def world_scene(self) -> GaussianScene:
        """The Gaussians moved into the world frame by `T_world_object` (`transform_scene`).

        The result is cached until the pose changes, so moving one object does not re-transform
        the others.
        """
        key = self.T_world_object.tobytes()
        if self._world_cache is None or self._world_cache[0] != key:
            self._world_cache = (key, transform_scene(self.scene, self.T_world_object))
        return self._world_cache[1]

    @property
    def world_center(self) -> np.ndarray:
        """[3] float64 pivot in world coordinates (T_world_object applied to `center`)."""
        return self.T_world_object[:3, :3] @ self.center + self.T_world_object[:3, 3]


def transform_scene(scene: GaussianScene, T_world_object: np.ndarray) -> GaussianScene:
    """Move a scene rigidly into the world frame (module docstring for the math).

    Args:
        scene: Gaussians in the object frame.
        T_world_object: [4, 4] rigid pose object -> world.

    Returns:
        A new `GaussianScene` on the same device; log_scales and opacity_logits are shared with
        `scene`, the other tensors are new.

    Raises:
        ValueError: `T_world_object` is not a rigid transform with a proper rotation.
    """
    pose = check_rigid(T_world_object, "T_world_object")
    device, dtype = scene.means.device, scene.means.dtype
    rotation = torch.from_numpy(pose[:3, :3]).to(device, dtype)
    translation = torch.from_numpy(pose[:3, 3]).to(device, dtype)
    q = rotation_matrix_to_quaternion(torch.from_numpy(pose[:3, :3])).to(device, dtype)
    return replace(
        scene,
        means=scene.means @ rotation.T + translation,
        quats=quaternion_multiply(q, scene.quats),
        sh_coeffs=rotate_sh(scene.sh_coeffs, pose[:3, :3], scene.sh_degree),
    )


def merge_scenes(scenes: list[GaussianScene]) -> GaussianScene:
    """Concatenate scenes (already in one frame) into one Gaussian set.

    Args:
        scenes: at least one scene, all on one device with the same `color_activation` and
            `antialiased` flag.

    Returns:
        A `GaussianScene` with N = sum of the inputs' N, in input order, and `sh_degree` the
        largest of the inputs' (bands above a scene's degree are zero, so this is exact); a
        single scene is returned as it is (no copy per frame).

    Raises:
        ValueError: no scenes, or scenes with different colour activations or `antialiased`
            flags.
    """
    if not scenes:
        raise ValueError("merge_scenes: expected at least one scene")
    activations = {scene.color_activation for scene in scenes}
    if len(activations) > 1:
        raise ValueError(f"merge_scenes: scenes use different colour activations {sorted(activations)}; "
                         "convert them to one (`sigmoid_to_linear`) before merging")
    if len({scene.antialiased for scene in scenes}) > 1:
        raise ValueError("merge_scenes: some scenes are antialiased and some are not; one rasterizer "
                         "call applies the Mip-Splatting filter to all Gaussians or to none")
    if len(scenes) == 1:
        return scenes[0]
    return GaussianScene(
        **{name: torch.cat([getattr(scene, name) for scene in scenes]) for name in TENSOR_FIELDS},
        sh_degree=max(scene.sh_degree for scene in scenes),
        color_activation=scenes[0].color_activation,
        antialiased=scenes[0].antialiased,
    )


def compose_objects(objects: list[SceneObject]) -> GaussianScene | None:
    """World-frame Gaussians of the visible objects merged into one scene, in object order.

    Args:
        objects: the objects; invisible ones are skipped.

    Returns:
        The merged scene (`merge_scenes` of each `SceneObject.world_scene()`), or None when no
        object is visible.

    Raises:
        ValueError: from `transform_scene` / `merge_scenes`.
    """
    parts = [obj.world_scene() for obj in objects if obj.visible]
    return merge_scenes(parts) if parts else None


def load_scene_objects(paths: list[str | os.PathLike], device: torch.device | str = "cpu"
                       ) -> list[SceneObject]:
    """Read trained scenes (any format `read_scene` reads) as objects at identity pose.

    When the files mix colour models, the `sigmoid` ones (the original project's) are converted
    to `linear` with `sigmoid_to_linear` (a least-squares fit; a warning gives its error), since
    one rasterizer call uses one colour activation. Scenes trained with and without the
    Mip-Splatting filter (`GaussianScene.antialiased`) cannot be shown together: that is refused.

    Args:
        paths: scene files, at least one.
        device: torch device for the tensors.

    Returns:
        One `SceneObject` per path, named by the file name, in order.

    Raises:
        FileNotFoundError, ValueError: from `read_scene` (naming the file), no paths, or both
            antialiased and other scenes (naming them).
    """
    if not paths:
        raise ValueError("expected at least one scene file")
    scenes = [read_scene(path) for path in paths]
    if len({scene.antialiased for scene in scenes}) > 1:
        antialiased = [str(path) for path, scene in zip(paths, scenes) if scene.antialiased]
        plain = [str(path) for path, scene in zip(paths, scenes) if not scene.antialiased]
        raise ValueError(f"scenes trained with the Mip-Splatting antialiasing filter "
                         f"({', '.join(antialiased)}) and without it ({', '.join(plain)}) cannot be "
                         f"viewed together: one render applies the filter to every Gaussian or to "
                         f"none; view them separately")
    if len({scene.color_activation for scene in scenes}) > 1:
        for index, scene in enumerate(scenes):
            if scene.color_activation == "sigmoid":
                scenes[index], error = sigmoid_to_linear(scene)
                warnings.warn(f"{paths[index]}: sigmoid colour converted to linear to merge it with "
                              f"the other scenes (mean colour error {error:.4f})", stacklevel=2)
    return [SceneObject(name=Path(path).name, scene=scene.to(device))
            for path, scene in zip(paths, scenes)]
