"""`RasterizerConfig.blend_backward = "reproducible"`: the GPU layout's backward without atomics
(each tile's pixels summed in the block in a fixed order, one row per (tile, Gaussian) pair, rows
summed per Gaussian in a fixed order) against the float64 reference, and bit-identical over runs.

The per_pixel layout needs block shared memory: these tests run when test_blend_layouts.py reruns
this directory on Taichi's Vulkan backend (lavapipe); on ti.cpu they skip, and the CPU layout is
checked to ignore the setting. Lavapipe runs a block's threads in a fixed order, so there the
atomic backward repeats bit for bit too: the ten-run test is a real check only on CUDA
(benchmarks/gpu_check.sh runs it there).
"""
from __future__ import annotations

import dataclasses

import pytest
import torch

from comparison import GRADIENT_PRECISION, gradient_errors, relative_l2, render_pair
from reference import PARAMETER_NAMES, random_scene, scene_args
from test_rasterize_vs_reference import CASES as REFERENCE_CASES
from taichi_3dgs import RasterizerConfig, init_taichi, rasterize
from taichi_3dgs.backend import GPU_ARCHS

REPRODUCIBLE = RasterizerConfig(blend_backward="reproducible")
# Several shared-memory batches per tile, early stops, the max_alpha clamp.
CASES = ("deep_tiles", "saturated_early_stop", "opaque_max_alpha")


def _needs_gpu_layout():
    if init_taichi() not in GPU_ARCHS:
        pytest.skip("blend_backward applies to the per_pixel layout: runs when test_blend_layouts.py "
                    "reruns this directory on Vulkan")


def _gradients(scene, config, weights):
    params = {name: scene[name].clone().requires_grad_(True) for name in PARAMETER_NAMES}
    out = rasterize(*scene_args({**scene, **params}), config=config, absgrad=True)
    ((out.image * weights).sum() + out.alpha.sum()).backward()
    return {**{name: params[name].grad for name in PARAMETER_NAMES}, "means2d": out.means2d.grad,
            "absgrad": out.means2d_absgrad}


@pytest.fixture(scope="module", params=CASES)
def pair(request):
    _needs_gpu_layout()
    make_scene, kwargs = REFERENCE_CASES[request.param]
    return render_pair(make_scene(), **{**kwargs, "config": REPRODUCIBLE}, absgrad=True)


def test_gradients_match_the_reference_to_float32_precision(pair):
    errors = gradient_errors(pair)
    assert max(errors.values()) < GRADIENT_PRECISION, errors


def test_absgrad_matches_the_reference(pair):
    assert relative_l2(pair.means2d_absgrad, pair.ref_means2d_absgrad) < GRADIENT_PRECISION


def test_blocks_running_several_tiles_agree_with_the_atomic_backward():
    # 560 tiles, more than the 512 blocks Vulkan launches: blocks run several tiles one after another
    # and reset their shared state between them. (A float64 reference this large is slow on lavapipe;
    # the atomic backward is checked against it in test_rasterize_vs_reference.py.)
    _needs_gpu_layout()
    scene = random_scene(800, 448, 320, seed=21, log_scale_range=(-2.0, -1.0))
    scene["opacity_logits"] = torch.logit(torch.full((800,), 0.95))
    weights = torch.randn(320, 448, 3, generator=torch.Generator().manual_seed(2))
    atomic = _gradients(scene, RasterizerConfig(), weights)
    reproducible = _gradients(scene, REPRODUCIBLE, weights)
    for name, grad in atomic.items():
        assert relative_l2(reproducible[name], grad) < GRADIENT_PRECISION, name


def test_ten_backward_passes_give_bit_identical_gradients():
    _needs_gpu_layout()
    # Large overlapping Gaussians in every tile: an order-dependent sum would show in the last bits.
    scene = random_scene(40, 96, 64, seed=11, log_scale_range=(-0.5, 0.0))
    weights = torch.randn(64, 96, 3, generator=torch.Generator().manual_seed(0))
    first = _gradients(scene, REPRODUCIBLE, weights)
    for _ in range(9):
        again = _gradients(scene, REPRODUCIBLE, weights)
        for name, grad in first.items():
            assert torch.equal(grad, again[name]), name


def test_tiles_over_16_pixels_are_refused():
    _needs_gpu_layout()
    with pytest.raises(ValueError, match="blend_backward 'reproducible'.*tile_size <= 16"):
        rasterize(*scene_args(random_scene(10, 32, 32, seed=1)),
                  config=dataclasses.replace(REPRODUCIBLE, tile_size=32))


def test_the_cpu_layout_ignores_the_setting():
    if init_taichi() in GPU_ARCHS:
        pytest.skip("checks the CPU layout")
    scene = random_scene(200, 96, 64, seed=2)
    weights = torch.randn(64, 96, 3, generator=torch.Generator().manual_seed(1))
    atomic = _gradients(scene, RasterizerConfig(), weights)
    reproducible = _gradients(scene, REPRODUCIBLE, weights)
    for name, grad in atomic.items():
        assert torch.equal(grad, reproducible[name]), name


def test_unknown_setting_is_refused():
    with pytest.raises(ValueError, match=r"blend_backward = 'sorted'; expected one of \('atomic', 'reproducible'\)"):
        RasterizerConfig(blend_backward="sorted")
