"""Small rigid-body helpers in float64 numpy: rotations and 4x4 poses (quaternions:
`taichi_3dgs.quaternions`).

Poses are 4x4 homogeneous matrices `T_a_b` mapping frame-b coordinates to frame a
(e.g. `T_world_camera` is camera-to-world, docs/FORMATS.md "Frames and units").
"""
from __future__ import annotations

import numpy as np


def axis_angle_to_matrix(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation by `angle` radians about the unit direction of `axis` (right-hand rule).

    Rodrigues' formula R = I + sin(a) [k]_x + (1 - cos(a)) [k]_x^2.

    Args:
        axis: [3] direction (normalised here).
        angle: radians.

    Returns:
        [3, 3] float64 rotation matrix.

    Raises:
        ValueError: `axis` has (near) zero length.
    """
    axis = np.asarray(axis, dtype=np.float64)
    norm = np.linalg.norm(axis)
    if norm < 1e-12:
        raise ValueError(f"axis: expected a non-zero direction, got {axis.tolist()}")
    kx, ky, kz = axis / norm
    cross = np.array([[0.0, -kz, ky], [kz, 0.0, -kx], [-ky, kx, 0.0]])
    return np.eye(3) + np.sin(angle) * cross + (1.0 - np.cos(angle)) * cross @ cross


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

    Raises:
        ValueError: naming `name`, when the shape is not [3, 3] or the matrix is not orthonormal
            with determinant +1 (to 1e-6).
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape != (3, 3):
        raise ValueError(f"{name}: expected a [3, 3] rotation matrix, got shape {list(rotation.shape)}")
    if not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-6) \
            or abs(np.linalg.det(rotation) - 1.0) > 1e-6:
        raise ValueError(f"{name}: expected a proper rotation matrix (R^T R = I, det R = +1), got "
                         f"{rotation.tolist()}")
    return rotation


def check_rigid(pose: np.ndarray, name: str) -> np.ndarray:
    """Return `pose` as a float64 [4, 4] array after checking it is a proper rigid transform.

    Raises:
        ValueError: naming `name`, when the shape is not [4, 4], the last row is not
            [0, 0, 0, 1], or the rotation block is not a proper rotation (`check_rotation`).
    """
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (4, 4) or not np.allclose(pose[3], [0.0, 0.0, 0.0, 1.0]):
        raise ValueError(f"{name}: expected a rigid [4, 4] pose [[R, t], [0, 0, 0, 1]], got "
                         f"{pose.tolist()}")
    check_rotation(pose[:3, :3], f"{name} rotation block")
    return pose
