"""The motions of all training cameras together that pose corrections must not learn.

Pose optimisation (`pose_corrections.PoseCorrections`) corrects each training camera alone,
but moving every camera by one similarity transform of the world, with the scene moved alike,
renders every training image exactly as before: the loss has no gradient that holds the cameras
where they were, and Adam's steps of about the learning rate let the whole set drift. The scene
follows the drift, the uncorrected val cameras do not, and every val image loses (BENCHMARKS.md
"Pose optimisation: the common motion"). This is the gauge freedom of bundle adjustment (Triggs et
al., "Bundle Adjustment - A Modern Synthesis", 2000, section 9), fixed here as gsplat and the
official code leave it: after each step the corrections lose their least-squares component along
the seven common motions (rotation, translation, scale), as `keep-mean-identity` does for exposure.

A small common motion g = (omega, v, s) of the world (rotation vector omega, radians; translation
v, world units; log-scale s about the cameras' mean centre c0) moves camera i, camera-to-world
[R_i | c_i], like the correction (camera frame, as in `PoseCorrections`)

    w_i = R_i^T omega,    t_i = R_i^T (omega x (c_i - c0) + v + s (c_i - c0)),

a rotation about the camera's centre by w_i and a shift R_i t_i of its centre. With the learnt
translation t_i / extent, the 6C learnt numbers change by J g for a [6C, 7] matrix J;
`common_motion_basis` returns an orthonormal basis Q of J's column space (at most 7 columns), and
`remove_common_motion` subtracts Q Q^T d from the corrections d (the first-order projection; the
corrections are small, of the order of a pose error).
"""
from __future__ import annotations

import numpy as np
import torch


def common_motion_basis(rotations: np.ndarray, centres: np.ndarray, scene_extent: float) -> torch.Tensor:
    """Orthonormal basis of the changes of all learnt corrections that one common similarity
    motion of the world causes (module docstring).

    Args:
        rotations: [C, 3, 3] float array, camera-to-world rotations R_i (OpenCV camera axes).
        centres: [C, 3] float array, camera centres c_i, world units.
        scene_extent: world units per unit of the learnt translation (> 0).

    Returns:
        float64 [6C, K] tensor with orthonormal columns, K <= 7 the rank of J (6 for one camera,
        whose correction is then entirely common motion); rows in the order of the flattened
        [C, 6] corrections (t / extent, then w, per camera).

    Raises:
        ValueError: the shapes do not match or the extent is not positive.
    """
    rotations, centres = np.asarray(rotations, np.float64), np.asarray(centres, np.float64)
    count = rotations.shape[0]
    if rotations.shape != (count, 3, 3) or centres.shape != (count, 3) or count == 0:
        raise ValueError(f"rotations {rotations.shape} and centres {centres.shape}: expected [C, 3, 3] and [C, 3]")
    if not scene_extent > 0:
        raise ValueError(f"scene_extent is {scene_extent}; expected > 0")
    offsets = centres - centres.mean(axis=0)
    to_camera = np.transpose(rotations, (0, 2, 1))  # R_i^T, world -> camera
    # d(omega x c)/d(omega): column j is e_j x c.
    turn_shift = np.transpose(np.cross(np.eye(3)[None], offsets[:, None, :]), (0, 2, 1))
    jacobian = np.zeros((count, 6, 7))
    jacobian[:, :3, :3] = to_camera @ turn_shift / scene_extent
    jacobian[:, :3, 3:6] = to_camera / scene_extent
    jacobian[:, :3, 6] = (to_camera @ offsets[:, :, None])[..., 0] / scene_extent
    jacobian[:, 3:, :3] = to_camera
    left, singular, _ = np.linalg.svd(jacobian.reshape(6 * count, 7), full_matrices=False)
    rank = int((singular > 1e-9 * singular[0]).sum())
    return torch.from_numpy(left[:, :rank].copy())


@torch.no_grad()
def remove_common_motion(corrections: torch.Tensor, basis: torch.Tensor) -> None:
    """Subtract from `corrections` (in place) their least-squares component along `basis`.

    Args:
        corrections: [C, 6] float tensor (t / extent, w), any device.
        basis: float64 [6C, K] orthonormal columns from `common_motion_basis`, on the device of
            `corrections` (elsewhere every call copies between devices).
    """
    flat = corrections.reshape(-1).to(basis.device, torch.float64)
    common = basis @ (basis.T @ flat)
    corrections -= common.reshape(corrections.shape).to(corrections.device, corrections.dtype)
