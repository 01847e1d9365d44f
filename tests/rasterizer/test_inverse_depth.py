"""The opt-in inverse-depth image of `rasterize` (render_inverse_depth=True): sum_i alpha_i T_i / z_i,
the official rasterizer's `invdepths`, which the depth loss trains on.

Checked against the float64 dense reference (reference.py, whose inverse depth is its own blend
weights times 1 / z, differentiated by autograd): the image, and the gradients of a random-weighted
sum of it alone for the four geometry parameter tensors, means2d and the viewmat (the path through z that
the blending kernels do not carry), to the precision of the colour tests (comparison.py). The cases
run with the architecture's default blending layout: "per_tile" on ti.cpu here, "per_pixel" when
test_blend_layouts.py reruns this directory on Taichi's Vulkan backend.
"""
from __future__ import annotations

import pytest
import torch

from comparison import GRADIENT_PRECISION, PIXEL_PRECISION, mean_abs_error, pixel_error_quantile, relative_l2
from reference import PARAMETER_NAMES, means2d_absgrad_reference, random_scene, rasterize_reference, scene_args
from test_rasterize_vs_reference import CASES as COLOUR_CASES
from taichi_3dgs import RasterizerConfig, rasterize

DEFAULT = RasterizerConfig()
GEOMETRY = tuple(name for name in PARAMETER_NAMES if name != "sh_coeffs")  # inverse depth has no colour


def _scene_with_culled_gaussians():
    # Some Gaussians behind the camera and one exactly in its plane (z = 0, where 1 / z is inf):
    # they are culled, and their gradient must stay exactly 0 (not 0 * inf = nan).
    scene = random_scene(120, 64, 48, seed=31)
    R, t = scene["viewmat"][:3, :3].double(), scene["viewmat"][:3, 3].double()
    cam = (scene["means"].double() @ R.T + t)
    cam[:20, 2] *= -1.0
    cam[20, 2] = 0.0
    scene["means"] = ((cam - t) @ R).float()
    return scene


# The colour cases that change what the inverse-depth pass blends: opacity compensation, a
# coloured background (black in the second pass), the early stop, several shared-memory batches.
CASES = {name: COLOUR_CASES[name] for name in (
    "sh3_162x105", "background", "antialiased", "saturated_early_stop", "deep_tiles")}
CASES["culled"] = (_scene_with_culled_gaussians, dict())


def _weights(height, width):
    return torch.rand(height, width, generator=torch.Generator().manual_seed(7), dtype=torch.float64)


@pytest.fixture(scope="module", params=list(CASES))
def pair(request):
    """(rasterizer output, its gradients, reference output, reference gradients) for one case; the
    gradients are those of sum(weights * inverse_depth), keyed by parameter, "means2d", "viewmat"."""
    make_scene, kwargs = CASES[request.param]
    scene = make_scene()
    weights = _weights(scene["height"], scene["width"])

    params = {name: scene[name].clone().requires_grad_(True) for name in [*PARAMETER_NAMES, "viewmat"]}
    out = rasterize(*scene_args({**scene, **params}), render_inverse_depth=True, **kwargs)
    (out.inverse_depth * weights.float()).sum().backward()
    grads = {name: params[name].grad for name in params} | {"means2d": out.means2d.grad}

    ref_params = {name: scene[name].double().requires_grad_(True) for name in [*GEOMETRY, "viewmat"]}
    ref = rasterize_reference(*scene_args({**scene, **ref_params}), config=kwargs.get("config", DEFAULT),
                              background=kwargs.get("background"))
    (ref.inverse_depth * weights).sum().backward()
    ref = ref.__class__(**{**vars(ref), "inverse_depth": ref.inverse_depth.detach()})
    ref_grads = {name: ref_params[name].grad for name in ref_params} | {"means2d": ref.means2d.grad}
    return out._replace(inverse_depth=out.inverse_depth.detach()), grads, ref, ref_grads


def test_inverse_depth_matches_reference(pair):
    out, _, ref, _ = pair
    assert ref.inverse_depth.mean() > 0.01  # the scene is not empty (z of 2..6 units: 1/z up to 0.5)
    assert mean_abs_error(out.inverse_depth, ref.inverse_depth) < 1e-6
    assert pixel_error_quantile(out.inverse_depth, ref.inverse_depth) < PIXEL_PRECISION


def test_inverse_depth_gradients_match_reference(pair):
    _, grads, _, ref_grads = pair
    assert grads["sh_coeffs"] is None  # colours do not enter the inverse depth
    errors = {}
    for name, expected in ref_grads.items():
        actual = grads[name]
        assert actual is not None, f"no gradient reached {name}"
        assert torch.isfinite(actual).all(), f"non-finite gradient in {name}"
        # The viewmat's last row is constant: the rasterizer gives it 0, the reference autograd.
        errors[name] = relative_l2(actual[:3], expected[:3]) if name == "viewmat" else relative_l2(actual, expected)
    assert max(errors.values()) < GRADIENT_PRECISION, errors


def test_culled_gaussians_get_zero_gradient(pair):
    _, grads, ref, _ = pair
    culled = ref.radii == 0
    if not culled.any():
        pytest.skip("every Gaussian of this case is visible")
    for name in GEOMETRY:
        assert (grads[name][culled] == 0).all(), name


def test_inverse_depth_is_off_by_default_and_changes_nothing_else():
    scene = random_scene(200, 64, 48, seed=9)
    background = torch.tensor([0.3, 0.6, 0.9])
    plain = rasterize(*scene_args(scene), background=background)
    with_depth = rasterize(*scene_args(scene), background=background, render_inverse_depth=True)
    assert plain.inverse_depth is None
    for name in ("image", "alpha", "depth", "radii", "means2d"):
        assert torch.equal(getattr(plain, name), getattr(with_depth, name)), name
    # Where a pixel is covered, inverse depth / alpha is a weighted mean of 1/z, between 1/6 and 1/2.
    covered = with_depth.alpha > 0.5
    mean_inverse_z = with_depth.inverse_depth[covered] / with_depth.alpha[covered]
    assert covered.sum() > 100
    assert ((mean_inverse_z > 1 / 6.01) & (mean_inverse_z < 1 / 1.99)).all()


def test_absgrad_with_inverse_depth_adds_each_images_per_pixel_absolute_gradients():
    # means2d_absgrad with both: a pixel's contributions through the image and through the inverse
    # depth enter as two absolute values (two blending passes). Expected: the reference's per-pixel
    # absolute sums for a loss on each image alone, added; they differ from those of the summed loss
    # (which would be a single pass's), so the test tells the two apart.
    scene = random_scene(60, 64, 48, seed=5)
    generator = torch.Generator().manual_seed(11)
    w_image = torch.rand(48, 64, 3, generator=generator, dtype=torch.float64) - 0.5
    w_inverse = 20.0 * (torch.rand(48, 64, generator=generator, dtype=torch.float64) - 0.5)

    def loss(out, image_weight, inverse_weight):
        return ((out.image * image_weight.to(out.image.dtype)).sum()
                + (out.inverse_depth * inverse_weight.to(out.inverse_depth.dtype)).sum())

    def reference_absgrad(image_weight, inverse_weight):
        params = {name: scene[name].double().requires_grad_(True) for name in GEOMETRY}
        ref = rasterize_reference(*scene_args({**scene, **params}), config=DEFAULT)
        loss(ref, image_weight, inverse_weight).backward()
        return means2d_absgrad_reference(ref)

    params = {name: scene[name].clone().requires_grad_(True) for name in PARAMETER_NAMES}
    out = rasterize(*scene_args({**scene, **params}), absgrad=True, render_inverse_depth=True)
    loss(out, w_image, w_inverse).backward()
    expected = reference_absgrad(w_image, 0 * w_inverse) + reference_absgrad(0 * w_image, w_inverse)
    single_pass = reference_absgrad(w_image, w_inverse)
    assert relative_l2(single_pass, expected) > 0.05  # the inverse depth's pull matters here
    assert relative_l2(out.means2d_absgrad, expected) < GRADIENT_PRECISION
    assert (out.means2d_absgrad >= out.means2d.grad.abs() * (1 - 1e-5) - 1e-12).all()
