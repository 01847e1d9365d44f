"""Small rigid-body helpers in float64 numpy: 4x4 poses and their checks (rotations:
`taichi_3dgs.rotations`).

Poses are 4x4 homogeneous matrices `T_a_b` mapping frame-b coordinates to frame a
(e.g. `T_world_camera` is camera-to-world, docs/FORMATS.md "Frames and units").
"""
from __future__ import annotations

import numpy as np

from taichi_3dgs.data.camera_checks import (
    RIGID_TRANSFORM_EXPECTED, ROTATION_EXPECTED, rigid_transform_problem, rotation_problem,
)


def rigid_transform(rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """[4, 4] float64 pose [[R, t], [0, 1]] from a [3, 3] rotation and a [3] translation."""
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = translation
    return pose


def invert_rigid(pose: np.ndarray) -> np.ndarray:
    """Inverse of a rigid [4, 4] pose: [[R^T, -R^T t], [0, 1]] (exact, no general inverse)."""
    rotation, translation = pose[:3, :3], pose[:3, 3]
    return rigid_transform(rotation.T, -rotation.T @ translation)


def check_rotation(rotation: np.ndarray, name: str) -> np.ndarray:
    """Return `rotation` as a float64 [3, 3] array after checking it is a proper rotation.

    The check is the camera readers' (`taichi_3dgs.data.camera_checks.rotation_problem`), so a pose the
    trainer accepts is accepted here too.

    Raises:
        ValueError: naming `name`, when `rotation_problem` finds one (shape not [3, 3], a
            non-finite entry, max |R^T R - I| above `ROTATION_TOLERANCE`, or det R < 0).
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    problem = rotation_problem(rotation)
    if problem is not None:
        raise ValueError(f"{name} {problem}; expected {ROTATION_EXPECTED}, got {rotation.tolist()}")
    return rotation


def check_rigid(pose: np.ndarray, name: str) -> np.ndarray:
    """Return `pose` as a float64 [4, 4] array after checking it is a proper rigid transform.

    Raises:
        ValueError: naming `name`, when `taichi_3dgs.data.camera_checks.rigid_transform_problem` finds
            one (shape not [4, 4], a non-finite entry, last row not [0, 0, 0, 1], or a rotation
            block that is not a proper rotation).
    """
    pose = np.asarray(pose, dtype=np.float64)
    problem = rigid_transform_problem(pose)
    if problem is not None:
        raise ValueError(f"{name} {problem}; expected {RIGID_TRANSFORM_EXPECTED}, got {pose.tolist()}")
    return pose
