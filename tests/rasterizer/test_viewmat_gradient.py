"""The camera gradient: dL/dviewmat of `rasterize` when the viewmat requires grad.

Checked (1) against the float64 dense reference's autograd (reference.py: gsplat's pure-torch
world-to-camera transform and SH, the camera centre -R^T T) on random scenes and on the real
garden scene, with the issue's tolerance (1e-2 relative L2 error) and to float32 precision, for
the rotation block and the translation column separately (their units differ); (2) against
float64 central finite differences of the reference's loss under small SE(3) motions of the
camera, which also checks the reference's own camera gradient.
"""
from __future__ import annotations

import pytest
import torch

from benchmarks.garden_scene import load_garden_scene
from comparison import ACCEPTANCE_GRADIENT_ERROR, GRADIENT_PRECISION, _loss_weights, relative_l2
from conftest import dataset_path
from reference import PARAMETER_NAMES, random_scene, rasterize_reference, scene_args
from test_rasterize_vs_reference import CASES as PARAMETER_GRADIENT_CASES
from taichi_3dgs import RasterizerConfig, init_taichi, rasterize
from taichi_3dgs.backend import GPU_ARCHS

DEFAULT = RasterizerConfig()


def _loss(out, weights):
    w_image, w_alpha = (w.to(out.image.dtype) for w in weights)
    return (out.image * w_image).sum() + (out.alpha * w_alpha).sum()


def _rasterizer_gradients(scene, weights, viewmat_requires_grad=True, **kwargs):
    """dL/dviewmat (None unless viewmat_requires_grad) and the parameters' gradients of `rasterize`."""
    params = {name: scene[name].clone().requires_grad_(True) for name in PARAMETER_NAMES}
    viewmat = scene["viewmat"].clone().requires_grad_(viewmat_requires_grad)
    _loss(rasterize(*scene_args({**scene, **params, "viewmat": viewmat}), **kwargs), weights).backward()
    return viewmat.grad, {name: params[name].grad for name in PARAMETER_NAMES}


def _reference_viewmat_gradient(scene, weights, config=DEFAULT, **kwargs):
    viewmat = scene["viewmat"].double().requires_grad_(True)
    out = rasterize_reference(*scene_args({**scene, "viewmat": viewmat}), config=config, **kwargs)
    _loss(out, weights).backward()
    return viewmat.grad


# The parameter-gradient cases that change the camera's paths: SH degrees (view direction), colour
# activation, background, Mip-Splatting compensation, early stop.
CASES = {name: PARAMETER_GRADIENT_CASES[name] for name in (
    "sh3_162x105", "sh0", "sh1", "sigmoid", "background", "antialiased", "saturated_early_stop")}


def _garden_scene():
    path = dataset_path("gsplat_test_garden") / "test_garden.npz"
    return load_garden_scene(path, n_points=10000, width=162, height=105, sh_rest_std=0.05)


@pytest.fixture(scope="module", params=[*CASES, "garden"])
def gradients(request):
    """(rasterizer's dL/dviewmat [4, 4] float32, reference's [4, 4] float64) for one case."""
    make_scene, kwargs = (_garden_scene, {}) if request.param == "garden" else CASES[request.param]
    scene = make_scene()
    weights = _loss_weights(scene["height"], scene["width"], seed=0)
    actual, _ = _rasterizer_gradients(scene, weights, **kwargs)
    return actual, _reference_viewmat_gradient(scene, weights, **kwargs)


def _errors(actual, expected):
    return {"rotation": relative_l2(actual[:3, :3], expected[:3, :3]),
            "translation": relative_l2(actual[:3, 3], expected[:3, 3])}


def test_viewmat_gradient_matches_reference(gradients):
    errors = _errors(*gradients)
    assert max(errors.values()) < ACCEPTANCE_GRADIENT_ERROR, errors


def test_viewmat_gradient_matches_reference_to_float32_precision(gradients):
    errors = _errors(*gradients)
    assert max(errors.values()) < GRADIENT_PRECISION, errors


def test_viewmat_gradient_of_the_constant_last_row_is_zero(gradients):
    actual, _ = gradients
    assert torch.isfinite(actual).all()
    assert (actual[3] == 0).all()
    assert actual[:3].abs().max() > 1.0  # the camera does matter


def test_camera_gradient_leaves_the_parameter_gradients_unchanged():
    # Bit for bit on the CPU; the GPU layouts add the blending gradients with atomics, whose
    # rounding depends on thread timing (see test_rasterize_determinism.py).
    bit_for_bit = init_taichi() not in GPU_ARCHS
    scene = random_scene(300, 162, 105, seed=1)
    weights = _loss_weights(105, 162, seed=0)
    viewmat_grad, with_camera = _rasterizer_gradients(scene, weights)
    no_viewmat_grad, without_camera = _rasterizer_gradients(scene, weights, viewmat_requires_grad=False)
    assert viewmat_grad is not None and no_viewmat_grad is None
    for name in PARAMETER_NAMES:
        if bit_for_bit:
            assert torch.equal(with_camera[name], without_camera[name]), name
        else:
            assert relative_l2(with_camera[name], without_camera[name]) < 1e-5, name


def _se3_generators():
    """The 6 twists [4, 4] float64 of se(3): rotations about camera x, y, z, then translations."""
    generators = []
    for axis in range(3):
        twist = torch.zeros(4, 4, dtype=torch.float64)
        j, k = (axis + 1) % 3, (axis + 2) % 3
        twist[j, k], twist[k, j] = -1.0, 1.0
        generators.append(twist)
    for axis in range(3):
        twist = torch.zeros(4, 4, dtype=torch.float64)
        twist[axis, 3] = 1.0
        generators.append(twist)
    return generators


def test_viewmat_gradient_matches_finite_differences_of_camera_motions():
    # A camera moved by exp(eps xi) viewmat (xi in se(3), in the camera frame): dL/deps at 0 is
    # sum(dL/dviewmat * xi viewmat). The reference is evaluated in float64 at the moved cameras.
    scene = random_scene(12, 24, 20, seed=7, log_scale_range=(-2.5, -1.0))
    weights = _loss_weights(20, 24, seed=0)
    background = torch.tensor([0.3, 0.1, 0.6])
    viewmat = scene["viewmat"].double()

    def loss_at(moved_viewmat):
        out = rasterize_reference(*scene_args({**scene, "viewmat": moved_viewmat}), background=background,
                                  config=DEFAULT)
        return _loss(out, weights).item()

    step = 1e-6
    numeric = torch.tensor([(loss_at(torch.linalg.matrix_exp(step * xi) @ viewmat)
                             - loss_at(torch.linalg.matrix_exp(-step * xi) @ viewmat)) / (2 * step)
                            for xi in _se3_generators()])
    actual, _ = _rasterizer_gradients(scene, weights, background=background)
    reference = _reference_viewmat_gradient(scene, weights, background=background)
    for name, gradient, tolerance in (("reference", reference, 1e-6), ("rasterizer", actual, GRADIENT_PRECISION)):
        analytic = torch.stack([(gradient.double() * (xi @ viewmat)).sum() for xi in _se3_generators()])
        for part, block in (("rotation", slice(0, 3)), ("translation", slice(3, 6))):
            assert numeric[block].norm() > 1.0, (part, numeric)
            error = relative_l2(analytic[block], numeric[block])
            assert error < tolerance, (name, part, error, analytic, numeric)
