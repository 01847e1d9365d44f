"""sigmoid -> linear colour fit: exact where it can be, small error elsewhere, also off its grid."""
import pytest
import torch
from synthetic_scenes import random_scene

from taichi_3dgs.scene.color_conversion import fibonacci_sphere, sigmoid_to_linear
from taichi_3dgs.scene.spherical_harmonics import sh_basis


def _sigmoid_colours(scene, dirs):
    return torch.sigmoid(torch.einsum("mk,nkc->nmc", sh_basis(dirs, 3), scene.sh_coeffs))


def _linear_colours(scene, dirs):
    return (torch.einsum("mk,nkc->nmc", sh_basis(dirs, 3), scene.sh_coeffs) + 0.5).clamp_min(0.0)


def test_linear_scene_is_returned_unchanged_with_zero_error():
    scene = random_scene(num_gaussians=10)
    converted, error = sigmoid_to_linear(scene)
    assert converted is scene and error == 0.0


def test_constant_sigmoid_colour_is_fitted_exactly():
    # Degree 0: the colour sigmoid(Y_0 c) is the same from every direction, so the fit is exact.
    scene = random_scene(num_gaussians=200, sh_degree=0, color_activation="sigmoid")
    converted, error = sigmoid_to_linear(scene)
    y0 = 0.28209479177387814
    expected_dc = (torch.sigmoid(y0 * scene.sh_coeffs[:, 0]) - 0.5) / y0
    torch.testing.assert_close(converted.sh_coeffs[:, 0], expected_dc, rtol=0, atol=1e-5)
    assert float(converted.sh_coeffs[:, 1:].abs().max()) < 1e-5
    assert error < 1e-6


def test_fit_error_of_a_degree_3_sigmoid_scene_is_small():
    scene = random_scene(num_gaussians=500, sh_degree=3, color_activation="sigmoid")
    converted, error = sigmoid_to_linear(scene)
    assert (converted.color_activation, converted.sh_degree) == ("linear", 3)
    converted.validate()
    # Measured 0.00115 (seed 0): colours within ~0.1 % of the 0..1 range on average.
    assert 1e-4 < error < 0.002
    fit_dirs = fibonacci_sphere(128, dtype=torch.float32)
    reported = (_linear_colours(converted, fit_dirs) - _sigmoid_colours(scene, fit_dirs)).abs()
    assert float(reported.mean()) == pytest.approx(error, rel=1e-3)


def test_fitted_colours_match_at_held_out_directions():
    scene = random_scene(num_gaussians=500, sh_degree=3, color_activation="sigmoid", seed=1)
    converted, error = sigmoid_to_linear(scene)
    held_out = torch.nn.functional.normalize(
        torch.randn(256, 3, generator=torch.Generator().manual_seed(7)), dim=1)
    difference = (_linear_colours(converted, held_out) - _sigmoid_colours(scene, held_out)).abs()
    # Measured mean 0.00115 and max 0.023: the fit generalises off its 128 directions.
    assert float(difference.mean()) < 1.2 * error
    assert float(difference.max()) < 0.05


def test_conversion_keeps_geometry_tensors():
    scene = random_scene(num_gaussians=5, sh_degree=2, color_activation="sigmoid")
    converted, _ = sigmoid_to_linear(scene)
    for field in ("means", "quats", "log_scales", "opacity_logits"):
        assert getattr(converted, field) is getattr(scene, field)


def test_too_few_directions_is_an_error():
    with pytest.raises(ValueError, match="num_directions must be >= 16"):
        sigmoid_to_linear(random_scene(num_gaussians=2, color_activation="sigmoid"), 15)


def test_fibonacci_sphere_is_unit_and_balanced():
    dirs = fibonacci_sphere(128)
    torch.testing.assert_close(dirs.norm(dim=1), torch.ones(128, dtype=torch.float64))
    assert float(dirs.mean(dim=0).abs().max()) < 0.01
