"""Depth supervision (taichi_3dgs/training/depth_supervision.py): the weight schedule, the scale/shift
alignment of relative depth maps, the loss targets of metric and inverse maps, and the val depth error."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.data.views import View
from taichi_3dgs.training.config import DepthLossConfig
from taichi_3dgs.training.depth_supervision import (
    ALIGNMENT_MIN_ALPHA, align_scale_shift, depth_error, depth_loss, depth_loss_weight, target_inverse_depth,
)

H, W = 12, 10


def _view(depth: torch.Tensor, depth_type: str, mask: torch.Tensor | None = None) -> View:
    record = CameraRecord(image_path="a.png", K=np.diag([10.0, 10.0, 1.0]), T_pointcloud_camera=np.eye(4),
                          width=W, height=H, depth_path="a.npy", depth_type=depth_type)
    return View(name="a.png", camera=record, image=torch.zeros(H, W, 3, dtype=torch.uint8), mask=mask,
                viewmat=torch.eye(4), K=torch.tensor(record.K, dtype=torch.float32), depth=depth)


def _random(seed: int, low: float, high: float) -> torch.Tensor:
    return torch.empty(H, W).uniform_(low, high, generator=torch.Generator().manual_seed(seed))


def test_weight_follows_the_official_exponential_schedule():
    # get_expon_lr_func(1.0, 0.01, max_steps=N): 1 at the start, 0.01 at the end, log-linear between.
    config = DepthLossConfig()
    assert depth_loss_weight(0, config, 1000) == pytest.approx(1.0)
    assert depth_loss_weight(500, config, 1000) == pytest.approx(0.1)
    assert depth_loss_weight(250, config, 1000) == pytest.approx(10 ** -0.5)
    assert depth_loss_weight(1000, config, 1000) == pytest.approx(0.01)
    assert depth_loss_weight(5000, config, 1000) == pytest.approx(0.01)


def test_alignment_recovers_a_known_affine_ignoring_unmasked_pixels():
    source = _random(0, 0.1, 2.0)
    target = 0.37 * source - 0.052
    mask = torch.ones(H, W, dtype=torch.bool)
    mask[:3] = False
    target[:3] = 100.0  # outliers outside the fit
    scale, shift = align_scale_shift(source, target, mask)
    assert scale == pytest.approx(0.37, rel=1e-6) and shift == pytest.approx(-0.052, rel=1e-5)


def test_alignment_is_the_least_squares_fit_of_noisy_data():
    source = _random(1, 0.1, 2.0)
    target = 2.5 * source + 0.3 + 0.05 * torch.randn(H, W, generator=torch.Generator().manual_seed(2))
    mask = _random(3, 0.0, 1.0) > 0.3
    x, y = source[mask].double().numpy(), target[mask].double().numpy()
    expected, *_ = np.linalg.lstsq(np.stack([x, np.ones_like(x)], 1), y, rcond=None)
    assert align_scale_shift(source, target, mask) == pytest.approx(tuple(expected), rel=1e-6)


def test_alignment_of_too_few_or_constant_pixels_is_none():
    source, target = _random(4, 0.1, 2.0), _random(5, 0.1, 2.0)
    one = torch.zeros(H, W, dtype=torch.bool)
    one[2, 3] = True
    assert align_scale_shift(source, target, one) is None
    assert align_scale_shift(torch.full((H, W), 0.7), target, torch.ones(H, W, dtype=torch.bool)) is None


def test_metric_target_is_inverse_depth_on_valid_unmasked_pixels():
    z = _random(6, 1.0, 5.0)
    z[0, :] = 0.0  # no depth
    mask = torch.ones(H, W, dtype=torch.bool)
    mask[:, 0] = False  # left out of the loss by the view's mask
    target, valid = target_inverse_depth(_view(z, "metric", mask), torch.zeros(H, W), torch.zeros(H, W))
    expected_valid = (z > 0) & mask
    assert torch.equal(valid, expected_valid)
    assert torch.allclose(target[valid], 1.0 / z[valid])


def test_metric_loss_is_the_mean_l1_of_inverse_depth_over_valid_pixels_with_its_gradient():
    z = _random(7, 1.0, 5.0)
    z[5:, :] = 0.0
    rendered = _random(8, 0.1, 1.0).requires_grad_(True)
    loss = depth_loss(_view(z, "metric"), rendered, torch.ones(H, W))
    valid = z > 0
    difference = rendered.detach() - torch.where(valid, 1.0 / z, 0.0)
    assert float(loss.detach()) == pytest.approx(float(difference[valid].abs().mean()), rel=1e-6)
    loss.backward()
    expected_grad = torch.where(valid, torch.sign(difference), 0.0) / valid.sum()
    assert torch.allclose(rendered.grad, expected_grad)


def test_inverse_target_is_aligned_onto_the_covered_render():
    relative = _random(9, 0.0, 10.0)  # a monocular estimate: inverse depth up to scale and shift
    alpha = torch.ones(H, W)
    alpha[:4] = 0.2  # half transparent: not part of the fit
    rendered = 0.03 * relative + 0.12
    rendered[:4] = 5.0
    view = _view(relative, "inverse")
    target, valid = target_inverse_depth(view, rendered, alpha)
    covered = alpha > ALIGNMENT_MIN_ALPHA
    assert torch.allclose(target, 0.03 * relative + 0.12, atol=1e-6)
    assert bool(valid.all())
    loss = depth_loss(view, rendered, alpha)  # only the uncovered rows differ
    expected = (5.0 - (0.03 * relative[:4] + 0.12)).abs().sum() / (H * W)
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert covered.sum() == (H - 4) * W


def test_inverse_target_that_disagrees_with_the_render_adds_no_loss():
    relative = _random(10, 0.0, 10.0)
    rendered = 1.0 - 0.05 * relative  # far where the estimate says near: the fit's scale is < 0
    assert depth_loss(_view(relative, "inverse"), rendered, torch.ones(H, W)) is None


def test_metric_depth_error_is_the_mean_absolute_relative_error():
    z = _random(11, 1.0, 5.0)
    z[0] = 0.0
    rendered = z * 1.1
    rendered[1] = 0.0  # nothing drawn there: 100 % error
    error = depth_error(_view(z, "metric"), rendered, torch.ones(H, W))
    assert error == pytest.approx((0.1 * (H - 2) + 1.0) / (H - 1), rel=1e-5)
    assert depth_error(_view(torch.zeros(H, W), "metric"), rendered, torch.ones(H, W)) is None


def test_inverse_depth_error_is_zero_for_a_render_affine_to_the_estimate_and_grows_with_distortion():
    relative = _random(12, 1.0, 10.0)
    exact = 1.0 / (0.2 * relative + 0.1)  # the estimate is affine in the render's inverse depth
    alpha = torch.ones(H, W)
    assert depth_error(_view(relative, "inverse"), exact, alpha) == pytest.approx(0.0, abs=1e-6)
    distorted = exact ** 1.5  # not affine in inverse depth
    assert depth_error(_view(relative, "inverse"), distorted, alpha) > 0.05
    assert math.isfinite(depth_error(_view(relative, "inverse"), distorted, alpha))
