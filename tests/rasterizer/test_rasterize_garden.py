"""`rasterize` on Gaussians of the real garden scene (gsplat's test_garden.npz, seeded as gsplat's
tests build them) against the float64 dense reference: 10,000 of the 111,785 cropped points,
camera 0 at a quarter of its resolution (162x105), SH degree 3."""
from __future__ import annotations

import pytest

from comparison import gradient_errors, mean_abs_error, render_pair
from conftest import dataset_path
from reference import garden_scene


@pytest.fixture(scope="module")
def pair():
    path = dataset_path("gsplat_test_garden") / "test_garden.npz"
    scene = garden_scene(path, n_points=10000, seed=0, downscale=4, sh_rest_std=0.05)
    return render_pair(scene, sh_degree=3)


def test_garden_image_matches_reference(pair):
    assert pair.ref.alpha.mean() > 0.3  # the plants and the table fill much of the view
    assert mean_abs_error(pair.out.image, pair.ref.image) < 1e-4


def test_garden_alpha_matches_reference(pair):
    assert mean_abs_error(pair.out.alpha, pair.ref.alpha) < 1e-4


def test_garden_depth_matches_reference(pair):
    assert mean_abs_error(pair.out.depth, pair.ref.depth) < 1e-4


def test_garden_gradients_match_reference(pair):
    errors = gradient_errors(pair)
    assert max(errors.values()) < 1e-2, errors
