"""The common motion of all training cameras (taichi_3dgs/training/pose_gauge.py).

Reference: the corrections of a known small similarity motion of the world, computed here from
4x4 matrices (numpy inverse, scipy's Rotation) as T_i^-1 G T_i, not from the module's Jacobian.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from taichi_3dgs.training.pose_corrections import PoseCorrections
from taichi_3dgs.training.config import PoseOptimizationConfig
from taichi_3dgs.training.pose_gauge import common_motion_basis, remove_common_motion

EXTENT = 3.0


def cameras(count: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """[C, 3, 3] random camera-to-world rotations and [C, 3] centres."""
    rotations = Rotation.random(count, random_state=seed).as_matrix()
    return rotations, np.random.default_rng(seed).normal(size=(count, 3)) * EXTENT


def similarity_corrections(rotations, centres, rotation_vector, shift, log_scale) -> torch.Tensor:
    """[C, 6] learnt corrections (t / EXTENT, w) that move every camera by one similarity of the
    world: rotation `rotation_vector` about, and scale exp(log_scale) from, the mean centre, then
    `shift` (world units)."""
    turn = Rotation.from_rotvec(rotation_vector).as_matrix()
    middle = centres.mean(axis=0)
    rows = []
    for rotation, centre in zip(rotations, centres):
        before, after = np.eye(4), np.eye(4)
        before[:3, :3], before[:3, 3] = rotation, centre
        after[:3, :3] = turn @ rotation
        after[:3, 3] = middle + np.exp(log_scale) * turn @ (centre - middle) + shift
        delta = np.linalg.inv(before) @ after
        rows.append(np.r_[delta[:3, 3] / EXTENT, Rotation.from_matrix(delta[:3, :3]).as_rotvec()])
    return torch.tensor(np.array(rows))


def test_a_common_similarity_motion_is_removed_to_first_order():
    rotations, centres = cameras(8)
    corrections = similarity_corrections(rotations, centres, [1e-3, -2e-3, 3e-3], [2e-3, 1e-3, -3e-3], 2e-3)
    before = float(corrections.norm())
    remove_common_motion(corrections, common_motion_basis(rotations, centres, EXTENT))
    assert float(corrections.norm()) < 2e-3 * before  # what is left is second order in the motion


def test_corrections_of_single_cameras_keep_all_but_seven_of_their_dimensions():
    rotations, centres = cameras(8)
    basis = common_motion_basis(rotations, centres, EXTENT)
    assert basis.shape == (48, 7)
    torch.testing.assert_close(basis.T @ basis, torch.eye(7, dtype=torch.float64))
    corrections = torch.randn(8, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    kept = corrections.clone()
    remove_common_motion(kept, basis)
    removed = corrections - kept
    # An orthogonal projection: what is removed is orthogonal to what is kept, and removing twice
    # removes nothing more.
    assert abs(float((removed * kept).sum())) < 1e-12
    again = kept.clone()
    remove_common_motion(again, basis)
    torch.testing.assert_close(again, kept, rtol=0, atol=1e-14)


def test_one_camera_has_no_correction_but_common_motion():
    rotations, centres = cameras(1)
    basis = common_motion_basis(rotations, centres, EXTENT)
    assert basis.shape == (6, 6)
    corrections = torch.tensor([[0.1, -0.2, 0.3, 0.01, 0.02, -0.03]])
    remove_common_motion(corrections, basis)
    torch.testing.assert_close(corrections, torch.zeros(1, 6), rtol=0, atol=1e-7)


def test_bad_shapes_are_refused():
    rotations, centres = cameras(3)
    with pytest.raises(ValueError, match=r"rotations \(3, 3, 3\) and centres \(2, 3\)"):
        common_motion_basis(rotations, centres[:2], EXTENT)
    with pytest.raises(ValueError, match="scene_extent is 0"):
        common_motion_basis(rotations, centres, 0)


@pytest.mark.parametrize("remove", [False, True])
def test_pose_corrections_step_removes_the_common_motion_after_adam(remove):
    rotations, centres = cameras(5)
    config = PoseOptimizationConfig(learning_rate=1e-2, weight_decay=0.0, remove_common_motion=remove)
    basis = common_motion_basis(rotations, centres, EXTENT)
    poses = PoseCorrections(5, config, 100, EXTENT, "cpu", common_motion=basis if remove else None)
    # A loss whose gradient asks every camera for one world rotation: pure common motion.
    common = similarity_corrections(rotations, centres, [0.0, 0.0, 1e-3], [0.0, 0.0, 0.0], 0.0).float()
    poses.set_learning_rate(1)
    (poses.corrections * -common).sum().backward()
    poses.step()
    along_common = float((basis.T @ poses.corrections.detach().double().reshape(-1)).norm())
    if remove:
        assert along_common < 1e-7
    else:
        assert along_common > 1e-2  # Adam moved every coordinate by about the rate, 1e-2
