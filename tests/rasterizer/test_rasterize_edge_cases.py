"""`rasterize` where little or nothing is drawn, or scales are extreme: the background comes back,
every output is finite, culled or invisible Gaussians get exactly zero gradient, and no gradient
is ever NaN or inf."""
from __future__ import annotations

import pytest
import torch

from comparison import ACCEPTANCE_GRADIENT_ERROR, ACCEPTANCE_IMAGE_ERROR, gradient_errors, mean_abs_error, render_pair
from reference import PARAMETER_NAMES, camera_center, random_scene, scene_args
from taichi_3dgs import rasterize

BACKGROUND = torch.tensor([0.25, 0.5, 0.75])
WIDTH, HEIGHT = 40, 30


def _render_with_grads(scene):
    params = {name: scene[name].clone().requires_grad_(True) for name in PARAMETER_NAMES}
    out = rasterize(*scene_args({**scene, **params}), sh_degree=3, background=BACKGROUND)
    g = torch.Generator().manual_seed(0)
    loss = (out.image * torch.rand(out.image.shape, generator=g)).sum() + (out.alpha * 2.0).sum()
    loss.backward()
    return out, {name: params[name].grad for name in PARAMETER_NAMES}


def _assert_background_only(out):
    torch.testing.assert_close(out.image, BACKGROUND.expand(HEIGHT, WIDTH, 3), rtol=0, atol=1e-7)
    assert (out.alpha == 0).all()
    assert (out.depth == 0).all()


def _assert_zero_gradients(scene, grads):
    for name, grad in grads.items():
        assert grad is not None and grad.shape == scene[name].shape, name
        assert (grad == 0).all(), name


def _scene(n=30, seed=41):
    return random_scene(n, WIDTH, HEIGHT, seed=seed)


def test_no_gaussians_returns_background():
    scene = {**_scene(), **{name: _scene()[name][:0] for name in PARAMETER_NAMES}}
    out, grads = _render_with_grads(scene)
    assert out.image.shape == (HEIGHT, WIDTH, 3) and out.radii.shape == (0,) and out.means2d.shape == (0, 2)
    _assert_background_only(out)
    _assert_zero_gradients(scene, grads)


def test_gaussians_behind_the_camera_are_culled_with_zero_gradient():
    scene = _scene()
    center = camera_center(scene["viewmat"].double()).float()
    # mirror every centre through the camera centre: same distance, behind it; one exactly at it
    means = 2 * center - scene["means"]
    means[0] = center
    scene["means"] = means
    out, grads = _render_with_grads(scene)
    assert (out.radii == 0).all()
    _assert_background_only(out)
    _assert_zero_gradients(scene, grads)


def test_gaussians_outside_the_view_are_culled_with_zero_gradient():
    scene = _scene()
    R, t = scene["viewmat"][:3, :3], scene["viewmat"][:3, 3]
    cam = scene["means"] @ R.T + t
    cam[:, 0] = cam[:, 2] * 3.0  # 3x the depth to the side: far beyond the 40 px image
    scene["means"] = (cam - t) @ R
    out, grads = _render_with_grads(scene)
    assert (out.radii == 0).all()
    _assert_background_only(out)
    _assert_zero_gradients(scene, grads)


def test_transparent_gaussians_draw_nothing_and_get_zero_gradient():
    scene = _scene()
    scene["opacity_logits"] = torch.full_like(scene["opacity_logits"], -20.0)
    out, grads = _render_with_grads(scene)
    assert (out.radii > 0).sum() > 10  # projected and binned, yet every alpha is below 1/255
    _assert_background_only(out)
    _assert_zero_gradients(scene, grads)


def test_culled_gaussians_get_zero_gradient_beside_visible_ones():
    scene = _scene()
    center = camera_center(scene["viewmat"].double()).float()
    scene["means"][::2] = 2 * center - scene["means"][::2]  # every other Gaussian behind the camera
    out, grads = _render_with_grads(scene)
    assert (out.radii[::2] == 0).all() and (out.radii[1::2] > 0).sum() > 5
    assert out.alpha.max() > 0.5
    for name, grad in grads.items():
        assert (grad[::2] == 0).all(), name
        assert torch.isfinite(grad).all() and grad[1::2].abs().sum() > 0, name


@pytest.mark.parametrize("log_scale", [5.0, -12.0], ids=["huge", "tiny"])
def test_extreme_scales_match_reference_with_finite_gradients(log_scale):
    scene = _scene(n=20, seed=43)
    scene["log_scales"] = torch.full_like(scene["log_scales"], log_scale)
    scene["log_scales"][:, 0] += 0.5  # anisotropic, so rotations matter
    pair = render_pair(scene, background=BACKGROUND)
    for value in (pair.out.image, pair.out.alpha, pair.out.depth):
        assert torch.isfinite(value).all()
    assert pair.ref.alpha.mean() > (0.5 if log_scale > 0 else 0.002)
    assert mean_abs_error(pair.out.image, pair.ref.image) < ACCEPTANCE_IMAGE_ERROR
    assert mean_abs_error(pair.out.alpha, pair.ref.alpha) < ACCEPTANCE_IMAGE_ERROR
    errors = gradient_errors(pair)  # asserts finiteness too
    assert max(errors.values()) < ACCEPTANCE_GRADIENT_ERROR, errors
