"""`rasterize` on small random scenes against the float64 dense reference (reference.py):
image, alpha and depth within 1e-4 mean absolute error, gradients of a random-weighted image +
alpha sum within 1e-2 relative L2 error per parameter tensor."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from comparison import gradient_errors, mean_abs_error, render_pair
from reference import random_scene, rasterize_reference, scene_args
from taichi_3dgs import RasterizerConfig

IMAGE_TOLERANCE = 1e-4
GRADIENT_TOLERANCE = 1e-2
DEFAULT = RasterizerConfig()


def _saturated_scene():
    # Many large, nearly opaque Gaussians: most pixels stop early (T would fall below 1e-4).
    scene = random_scene(250, 64, 48, seed=11, log_scale_range=(-2.0, -1.0))
    scene["opacity_logits"] = torch.logit(torch.full((250,), 0.95))
    return scene


# name -> (scene factory, keyword arguments of rasterize)
CASES = {
    "sh3_162x105": (lambda: random_scene(300, 162, 105, seed=1), dict(sh_degree=3)),
    "sh0": (lambda: random_scene(300, 162, 105, seed=1), dict(sh_degree=0)),
    "sh1": (lambda: random_scene(300, 162, 105, seed=1), dict(sh_degree=1)),
    "sh2": (lambda: random_scene(300, 162, 105, seed=1), dict(sh_degree=2)),
    "background": (lambda: random_scene(200, 162, 105, seed=2),
                   dict(background=torch.tensor([0.2, 0.45, 0.9]))),
    "sigmoid": (lambda: random_scene(200, 162, 105, seed=3),
                dict(config=dataclasses.replace(DEFAULT, color_activation="sigmoid"))),
    "antialiased": (lambda: random_scene(200, 162, 105, seed=4, log_scale_range=(-5.0, -2.0)),
                    dict(config=dataclasses.replace(DEFAULT, antialiased=True))),
    "odd_37x53": (lambda: random_scene(80, 37, 53, seed=5), dict(background=torch.tensor([1.0, 1.0, 1.0]))),
    "saturated_early_stop": (_saturated_scene, dict()),
}


@pytest.fixture(scope="module", params=list(CASES))
def pair(request):
    make_scene, kwargs = CASES[request.param]
    return render_pair(make_scene(), **kwargs)


def test_image_matches_reference(pair):
    assert mean_abs_error(pair.out.image, pair.ref.image) < IMAGE_TOLERANCE


def test_alpha_matches_reference(pair):
    assert pair.ref.alpha.mean() > 0.05  # the scene is not empty
    assert mean_abs_error(pair.out.alpha, pair.ref.alpha) < IMAGE_TOLERANCE


def test_depth_matches_reference(pair):
    assert mean_abs_error(pair.out.depth, pair.ref.depth) < IMAGE_TOLERANCE


def test_radii_match_reference(pair):
    assert pair.out.radii.dtype == torch.int32
    assert (pair.out.radii.long() != pair.ref.radii).sum() <= 1


def test_pair_count_matches_reference(pair):
    assert abs(pair.out.num_pairs - pair.ref.n_pairs) <= 4


def test_gradients_match_reference(pair):
    errors = gradient_errors(pair)
    assert max(errors.values()) < GRADIENT_TOLERANCE, errors


def test_culled_gaussians_get_zero_gradient(pair):
    culled = pair.ref.radii == 0
    assert culled.any()
    for name, grad in pair.grads.items():
        assert (grad[culled] == 0).all(), name


def test_saturated_case_reaches_the_early_stop():
    # "saturated_early_stop" only tests the stop if T really falls that low in many pixels.
    ref_alpha = rasterize_reference(*scene_args(_saturated_scene()), config=DEFAULT).alpha
    assert (ref_alpha > 1 - 1e-3).float().mean() > 0.3
