"""Rotation math, in one place: quaternions, rotation vectors and axis-angle rotations.

Quaternions are torch tensors, scalar first (w, x, y, z), the order of `GaussianScene.quats`.
A unit quaternion q = (w, x, y, z) rotates by the matrix R(q) of the official 3DGS
`build_rotation` (graphdeco-inria `utils/general_utils.py`); composing rotations multiplies
quaternions with the Hamilton product, R(a * b) = R(a) R(b). No Taichi here: the rasterizer's
kernels have their own Taichi `quat_to_rotmat`. Rotation vectors (the SO(3) exponential map,
torch, differentiable) are what pose optimisation learns; `axis_angle_to_matrix` (float64 numpy,
Rodrigues) is what the viewers turn cameras and objects with.
"""
from __future__ import annotations

import numpy as np
import torch


def quaternion_to_rotation_matrix(quats: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of quaternions (normalised here, so any non-zero length works).

    Args:
        quats: [..., 4] floating tensor, w, x, y, z.

    Returns:
        [..., 3, 3] tensor, same dtype and device: R(q / |q|) (official `build_rotation`).
    """
    w, x, y, z = torch.nn.functional.normalize(quats, dim=-1).unbind(-1)
    return torch.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
            2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
            2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
        ],
        dim=-1,
    ).reshape(*quats.shape[:-1], 3, 3)


def quaternion_multiply(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """Hamilton product left * right (the rotation `right` first, then `left`).

    Args:
        left, right: [..., 4] tensors, w, x, y, z, broadcast against each other (e.g. [4] with
            [N, 4]).

    Returns:
        [..., 4] tensor, w, x, y, z; unit when both factors are unit.
    """
    w1, x1, y1, z1 = left.unbind(-1)
    w2, x2, y2, z2 = right.unbind(-1)
    return torch.stack([
        w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
        w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
        w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
    ], dim=-1)


def rotation_matrix_to_quaternion(rotation: torch.Tensor) -> torch.Tensor:
    """Unit quaternions with w >= 0 of proper rotation matrices (the inverse of
    `quaternion_to_rotation_matrix`).

    Shepperd's method (J. Guidance and Control 1978): of the four formulas, each dividing by one
    of 4w^2, 4x^2, 4y^2, 4z^2 (from the trace and the diagonal), use the one with the largest
    divisor, so no division is by a number near zero.

    Args:
        rotation: [..., 3, 3] floating tensor of rotation matrices (not checked; orthonormalise
            first if it may have drifted).

    Returns:
        [..., 4] tensor, w, x, y, z, same dtype and device, unit length, w >= 0.
    """
    m = rotation
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4w^2, 4x^2, 4y^2, 4z^2 of the unit quaternion, each 1 + a signed sum of the diagonal.
    squares = torch.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22,
                           1 - m00 - m11 + m22], dim=-1)
    d21, d02, d10 = m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]
    s01, s02, s12 = m[..., 0, 1] + m[..., 1, 0], m[..., 0, 2] + m[..., 2, 0], m[..., 1, 2] + m[..., 2, 1]
    # Row k is 4 q_k q (unnormalised): its k-th entry is 4 q_k^2, the others the products from
    # the off-diagonal sums and differences.
    candidates = torch.stack([
        torch.stack([squares[..., 0], d21, d02, d10], dim=-1),
        torch.stack([d21, squares[..., 1], s01, s02], dim=-1),
        torch.stack([d02, s01, squares[..., 2], s12], dim=-1),
        torch.stack([d10, s02, s12, squares[..., 3]], dim=-1),
    ], dim=-2)
    pivot = squares.argmax(dim=-1)
    q = torch.take_along_dim(candidates, pivot[..., None, None].expand(*pivot.shape, 1, 4), dim=-2)[..., 0, :]
    q = torch.nn.functional.normalize(q, dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def rotation_vector_to_matrix(rotation_vectors: torch.Tensor) -> torch.Tensor:
    """Rotation matrices of rotation vectors (the SO(3) exponential map), differentiable.

    exp([w]x) with [w]x the cross-product matrix of w: the rotation by |w| radians about w / |w|
    (right-handed), the identity for w = 0. Computed with `torch.linalg.matrix_exp`, whose
    gradient is exact at w = 0 too (where Rodrigues' formula divides by |w|).

    Args:
        rotation_vectors: [..., 3] float tensor, radians.

    Returns:
        [..., 3, 3] tensor of the same dtype and device.
    """
    x, y, z = rotation_vectors.unbind(-1)
    zero = torch.zeros_like(x)
    cross = torch.stack([zero, -z, y, z, zero, -x, -y, x, zero], dim=-1)
    return torch.linalg.matrix_exp(cross.reshape(*rotation_vectors.shape[:-1], 3, 3))


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
