"""rotate_sh: the colour of a rotated Gaussian along d is the old colour along R^T d."""
import math

import numpy as np
import pytest
import torch
from viewer_fixtures import trained_ply_path

from taichi_3dgs.scene import read_scene, sh_basis
from taichi_3dgs.scene.color_conversion import fibonacci_sphere
from taichi_3dgs.rotations import axis_angle_to_matrix
from taichi_3dgs.viewer.sh_rotation import rotate_sh, sh_rotation_matrices

ROTATION = axis_angle_to_matrix(np.array([0.3, -1.0, 0.5]), 1.1)


@pytest.fixture(scope="module")
def real_coefficients():
    """Degree-3 SH coefficients of 500 Gaussians of the real trained scene, in float64."""
    return read_scene(trained_ply_path()).sh_coeffs[:500].double()


def _colours(coefficients, dirs):
    return torch.einsum("dk,nkc->ndc", sh_basis(dirs, 3), coefficients)


def test_rotated_coefficients_give_the_old_colour_along_the_rotated_back_direction(real_coefficients):
    dirs = torch.nn.functional.normalize(torch.randn(200, 3, generator=torch.Generator().manual_seed(0),
                                                     dtype=torch.float64), dim=1)
    rotated = rotate_sh(real_coefficients, ROTATION)
    expected = _colours(real_coefficients, dirs @ torch.from_numpy(ROTATION))  # rows R^T d
    torch.testing.assert_close(_colours(rotated, dirs), expected, atol=1e-10, rtol=0)


def test_dc_coefficients_are_unchanged(real_coefficients):
    rotated = rotate_sh(real_coefficients, ROTATION)
    assert torch.equal(rotated[:, 0], real_coefficients[:, 0])


def test_band_matrices_are_orthogonal_as_for_an_orthonormal_basis():
    for band, matrix in enumerate(sh_rotation_matrices(ROTATION, 3)):
        np.testing.assert_allclose(matrix @ matrix.T, np.eye(2 * band + 1), atol=1e-12)


def test_two_rotations_compose_like_their_product(real_coefficients):
    second = axis_angle_to_matrix(np.array([1.0, 0.2, 0.0]), -0.7)
    twice = rotate_sh(rotate_sh(real_coefficients, ROTATION), second)
    torch.testing.assert_close(twice, rotate_sh(real_coefficients, second @ ROTATION), atol=1e-10, rtol=0)


def test_band_1_rotates_like_a_vector():
    # Y_1 = C1 * (-y, z, -x): a band-1-only colour is linear in the direction, so rotating the
    # coefficients must rotate the direction of maximal colour by R.
    peak = np.array([0.0, 0.0, 1.0])
    coefficients = torch.zeros(1, 16, 3, dtype=torch.float64)
    coefficients[0, 1:4, 0] = torch.tensor([-peak[1], peak[2], -peak[0]])
    rotated = rotate_sh(coefficients, ROTATION)
    dirs = fibonacci_sphere(4000)
    brightest = dirs[_colours(rotated, dirs)[0, :, 0].argmax()].numpy()
    assert math.degrees(math.acos(np.clip(brightest @ (ROTATION @ peak), -1, 1))) < 3.0


def test_a_reflection_is_rejected():
    with pytest.raises(ValueError, match="proper rotation"):
        sh_rotation_matrices(np.diag([1.0, 1.0, -1.0]))
