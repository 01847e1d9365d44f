"""Shared pieces of the quantised formats: the 180-degree axis turns (positions, rotations and SH
together), the smallest-three quaternion form and Morton order, against direct float64 math."""
import numpy as np
import pytest
import torch
from synthetic_scenes import random_scene

from taichi_3dgs.color_model import MAX_SH_DEGREE
from taichi_3dgs.rotations import quaternion_to_rotation_matrix
from taichi_3dgs.scene.quantisation import (from_smallest_three, morton_order, scene_arrays,
                                            smallest_three, turn_axes)
from taichi_3dgs.scene.spherical_harmonics import sh_basis


@pytest.mark.parametrize("signs", [(1, -1, -1), (-1, -1, 1), (-1, 1, -1)])
def test_turned_scene_looks_the_same_from_the_turned_directions(signs):
    arrays = scene_arrays(random_scene(num_gaussians=20, sh_degree=3))
    turned = turn_axes(arrays, signs)
    flip = np.diag(np.asarray(signs, dtype=np.float64))
    np.testing.assert_allclose(turned.means, arrays.means @ flip)
    directions = torch.nn.functional.normalize(torch.randn(50, 3, dtype=torch.float64), dim=1)
    colour = torch.einsum("dk,nkc->ndc", sh_basis(directions, MAX_SH_DEGREE),
                          torch.from_numpy(arrays.sh))
    turned_colour = torch.einsum("dk,nkc->ndc", sh_basis(directions @ torch.from_numpy(flip),
                                                         MAX_SH_DEGREE),
                                 torch.from_numpy(turned.sh))
    torch.testing.assert_close(turned_colour, colour)

    def covariance(a):
        rotation = quaternion_to_rotation_matrix(torch.from_numpy(a.quats)).numpy()
        return rotation @ np.apply_along_axis(np.diag, 1, np.exp(2 * a.log_scales)) \
            @ rotation.transpose(0, 2, 1)
    np.testing.assert_allclose(covariance(turned), flip @ covariance(arrays) @ flip, atol=1e-12)
    np.testing.assert_array_equal(turn_axes(turned, signs).sh, arrays.sh)  # its own inverse


def test_a_reflection_is_not_a_turn():
    with pytest.raises(ValueError, match=r"two -1 and one \+1"):
        turn_axes(scene_arrays(random_scene(num_gaussians=2)), (1, 1, -1))


def test_smallest_three_round_trips_and_keeps_the_largest_positive():
    quats = torch.nn.functional.normalize(torch.randn(500, 4, dtype=torch.float64), dim=1).numpy()
    largest, others = smallest_three(quats)
    assert np.abs(others).max() <= np.sqrt(0.5) + 1e-12
    back = from_smallest_three(largest, others)
    np.testing.assert_allclose(back * np.sign((back * quats).sum(1))[:, None], quats, atol=1e-12)
    assert (back[np.arange(500), largest] >= 0).all()


def test_morton_order_is_a_permutation_that_groups_neighbours():
    points = np.random.default_rng(0).uniform(0, 1, size=(4096, 3))
    order = morton_order(points)
    assert sorted(order.tolist()) == list(range(4096))
    step = np.linalg.norm(np.diff(points[order], axis=0), axis=1).mean()
    assert step < 0.5 * np.linalg.norm(np.diff(points, axis=0), axis=1).mean()
