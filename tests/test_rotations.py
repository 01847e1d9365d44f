"""Quaternion math (w, x, y, z) against scipy's Rotation (scalar last, an independent implementation)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from taichi_3dgs.rotations import (quaternion_multiply, quaternion_to_rotation_matrix,
                                     rotation_matrix_to_quaternion)


def _wxyz(rotations: Rotation) -> torch.Tensor:
    """scipy's x, y, z, w quaternions as a float64 [..., 4] w, x, y, z tensor."""
    return torch.from_numpy(np.roll(rotations.as_quat(), 1, axis=-1))


RANDOM = Rotation.random(200, random_state=7)
# Half turns (w = 0) about each axis and about a diagonal, and rotations near them: the trace is
# -1 or close, so the inverse must pivot on x, y or z instead of w.
HALF_TURNS = Rotation.from_rotvec(np.pi * np.array(
    [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0.6, 0.8, 0], [0, 0.6, -0.8]]))
NEAR_HALF_TURNS = Rotation.from_rotvec((np.pi - 1e-3) * np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]))


def test_rotation_matrix_is_scipys_and_ignores_the_quaternion_length():
    quats = _wxyz(RANDOM) * torch.linspace(0.1, 5.0, len(RANDOM), dtype=torch.float64)[:, None]
    torch.testing.assert_close(quaternion_to_rotation_matrix(quats), torch.from_numpy(RANDOM.as_matrix()),
                               atol=1e-12, rtol=0)


def test_rotation_matrix_keeps_the_batch_shape():
    quats = _wxyz(RANDOM).reshape(10, 20, 4)
    assert quaternion_to_rotation_matrix(quats).shape == (10, 20, 3, 3)
    assert quaternion_to_rotation_matrix(quats[0, 0]).shape == (3, 3)


def test_product_is_scipys_composition():
    left, right = RANDOM[:100], RANDOM[100:]
    torch.testing.assert_close(quaternion_multiply(_wxyz(left), _wxyz(right)), _wxyz(left * right),
                               atol=1e-12, rtol=0)


def test_product_of_one_quaternion_with_many_broadcasts():
    product = quaternion_multiply(_wxyz(RANDOM[0]), _wxyz(RANDOM))
    torch.testing.assert_close(product, _wxyz(RANDOM[0] * RANDOM), atol=1e-12, rtol=0)


@pytest.mark.parametrize("rotations", [RANDOM, HALF_TURNS, NEAR_HALF_TURNS],
                         ids=["random", "half_turns", "near_half_turns"])
def test_quaternion_of_a_matrix_is_scipys_with_w_non_negative(rotations):
    quats = rotation_matrix_to_quaternion(torch.from_numpy(rotations.as_matrix()))
    expected = _wxyz(rotations)
    expected = torch.where(expected[:, :1] < 0, -expected, expected)
    assert bool((quats[:, 0] >= 0).all())
    # q and -q are one rotation; at w = 0 either sign is right.
    sign = torch.where((quats * expected).sum(dim=1, keepdim=True) < 0, -1.0, 1.0).double()
    torch.testing.assert_close(quats * sign, expected, atol=1e-12, rtol=0)
    torch.testing.assert_close(quaternion_to_rotation_matrix(quats), torch.from_numpy(rotations.as_matrix()),
                               atol=1e-12, rtol=0)


def test_quaternion_of_one_matrix_has_shape_4():
    quat = rotation_matrix_to_quaternion(torch.from_numpy(RANDOM[3].as_matrix()))
    expected = _wxyz(RANDOM[3])
    torch.testing.assert_close(quat, expected * torch.sign(expected[0]), atol=1e-12, rtol=0)
