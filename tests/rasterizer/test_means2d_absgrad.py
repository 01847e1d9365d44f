"""`rasterize(absgrad=True)`: the sum over pixels of the absolute per-pixel gradients of means2d
(AbsGS, Ye et al. 2024; gsplat's means2d.absgrad) against the float64 reference, whose per-pixel
copies of means2d separate each pixel's contribution (reference.means2d_absgrad_reference).

Runs with the architecture's blending layout: per_tile here, per_pixel when test_blend_layouts.py
reruns this directory on Vulkan.
"""
from __future__ import annotations

import pytest
import torch

from comparison import GRADIENT_PRECISION, gradient_errors, relative_l2, render_pair
from reference import random_scene
from test_rasterize_vs_reference import CASES as REFERENCE_CASES
from taichi_3dgs import rasterize
from taichi_3dgs.rasterizer.binning import bin_tiles
from taichi_3dgs.rasterizer.blending import blend_tiles


# Cases of the reference comparison: a plain scene, early stops, alpha at the max_alpha clamp,
# and tiles deeper than one shared-memory batch of the per_pixel layout.
CASES = ("sh3_162x105", "saturated_early_stop", "opaque_max_alpha", "deep_tiles")


@pytest.fixture(scope="module", params=CASES)
def pair(request):
    make_scene, kwargs = REFERENCE_CASES[request.param]
    return render_pair(make_scene(), **kwargs, absgrad=True)


def test_absgrad_matches_the_reference_sum_of_per_pixel_absolute_gradients(pair):
    assert pair.means2d_absgrad is not None and pair.means2d_absgrad.shape == pair.means2d_grad.shape
    assert relative_l2(pair.means2d_absgrad, pair.ref_means2d_absgrad) < GRADIENT_PRECISION


def test_absgrad_is_not_the_absolute_value_of_the_summed_gradient(pair):
    # The per-pixel contributions have mixed signs: their absolute sum is well above |sum|, so the
    # comparison above cannot pass with |means2d.grad|.
    assert relative_l2(pair.means2d_grad.abs(), pair.ref_means2d_absgrad) > 0.2
    assert (pair.means2d_absgrad >= pair.means2d_grad.abs() * (1 - 1e-5) - 1e-12).all()


def test_absgrad_leaves_every_other_gradient_as_the_reference(pair):
    errors = gradient_errors(pair)
    assert max(errors.values()) < GRADIENT_PRECISION, errors


def test_without_absgrad_there_is_no_statistic():
    pair = render_pair(random_scene(40, 48, 32, seed=3))
    assert pair.means2d_absgrad is None
    assert pair.ref_means2d_absgrad.abs().sum() > 0  # the reference computes it regardless


def test_absgrad_accumulates_over_backward_passes_like_grad():
    scene = random_scene(60, 64, 48, seed=5)
    means = scene["means"].clone().requires_grad_(True)
    out = rasterize(means, scene["quats"], scene["log_scales"], scene["opacity_logits"], scene["sh_coeffs"],
                    scene["viewmat"], scene["K"], scene["width"], scene["height"], absgrad=True)
    loss = (out.image * torch.linspace(-1.0, 1.0, 3)).sum()
    loss.backward(retain_graph=True)
    once = out.means2d_absgrad.clone()
    assert once.abs().sum() > 0
    loss.backward()
    torch.testing.assert_close(out.means2d_absgrad, 2 * once)


def test_an_accumulator_of_the_wrong_shape_is_refused():
    means2d = torch.zeros(3, 2)
    bins = bin_tiles(means2d, torch.zeros(3, dtype=torch.int32), torch.ones(3), 16, 16, 16)
    with pytest.raises(ValueError, match=r"absgrad_out: expected shape \[3, 2\]"):
        blend_tiles(means2d, torch.zeros(3, 3), torch.zeros(3, 3), torch.zeros(3), torch.ones(3), bins, 16, 16,
                    torch.zeros(3), absgrad_out=torch.zeros(3))
