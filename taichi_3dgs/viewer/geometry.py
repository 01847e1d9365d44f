"""Small rigid-body helpers in float64 numpy: rotations, quaternions (w, x, y, z), 4x4 poses.

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


def matrix_to_quat(rotation: np.ndarray) -> np.ndarray:
    """Unit quaternion (w, x, y, z) with w >= 0 of a proper rotation matrix (Shepperd's method,
    J. Guidance and Control 1978: pivot on the largest of w, x, y, z for stability).

    Args:
        rotation: [3, 3] rotation matrix.

    Returns:
        [4] float64 quaternion w, x, y, z whose rotation matrix is `rotation`.
    """
    m = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(m)
    candidates = np.array([trace, m[0, 0], m[1, 1], m[2, 2]])
    pivot = int(np.argmax(candidates))
    if pivot == 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s]
    elif pivot == 1:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [(m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s]
    elif pivot == 2:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return q if q[0] >= 0 else -q


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
