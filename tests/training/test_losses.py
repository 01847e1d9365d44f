"""Losses and metrics against independent computations."""
from __future__ import annotations

import math

import numpy as np
import torch

from taichi_3dgs.training.losses import l1_loss, psnr, ssim


def direct_ssim_float64(x: np.ndarray, y: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    """SSIM of [H, W, C] images by explicit per-pixel weighted sums over a zero-padded 2D window."""
    half = size // 2
    g = np.exp(-((np.arange(size) - half) ** 2) / (2 * sigma**2))
    g /= g.sum()
    window = np.outer(g, g)
    h, w, c = x.shape
    pad = lambda a: np.pad(a, ((half, half), (half, half), (0, 0)))  # noqa: E731
    xp, yp = pad(x), pad(y)
    values = np.zeros((h, w, c))
    for i in range(h):
        for j in range(w):
            wx = xp[i:i + size, j:j + size]
            wy = yp[i:i + size, j:j + size]
            mx = np.einsum("ab,abc->c", window, wx)
            my = np.einsum("ab,abc->c", window, wy)
            vx = np.einsum("ab,abc->c", window, wx * wx) - mx**2
            vy = np.einsum("ab,abc->c", window, wy * wy) - my**2
            cxy = np.einsum("ab,abc->c", window, wx * wy) - mx * my
            c1, c2 = 0.01**2, 0.03**2
            values[i, j] = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
    return float(values.mean())


def test_ssim_matches_a_direct_float64_computation():
    rng = np.random.default_rng(0)
    x = rng.random((17, 23, 3))
    y = np.clip(x + 0.2 * rng.normal(size=x.shape), 0, 1)
    ours = float(ssim(torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32)))
    assert abs(ours - direct_ssim_float64(x, y)) < 1e-5


def test_ssim_of_an_image_with_itself_is_one():
    image = torch.rand(20, 30, 3, generator=torch.Generator().manual_seed(1))
    assert abs(float(ssim(image, image)) - 1.0) < 1e-6


def test_ssim_falls_as_noise_grows():
    gen = torch.Generator().manual_seed(2)
    image = torch.rand(32, 32, 3, generator=gen)
    noise = torch.randn(32, 32, 3, generator=gen)
    values = [float(ssim(image, (image + s * noise).clamp(0, 1))) for s in (0.01, 0.1, 0.3)]
    assert values[0] > values[1] > values[2]


def test_masked_l1_averages_only_the_kept_pixels():
    image = torch.zeros(4, 5, 3)
    target = torch.zeros(4, 5, 3)
    target[:2] = 1.0  # error 1 in the top two rows, 0 elsewhere
    mask = torch.zeros(4, 5, dtype=torch.bool)
    mask[1:3] = True  # one row with error, one without
    assert float(l1_loss(image, target, mask)) == 0.5
    assert float(l1_loss(image, target)) == 0.5  # without a mask: half of the pixels differ by 1


def test_psnr_of_a_known_mse():
    target = torch.zeros(10, 10, 3)
    image = torch.full((10, 10, 3), 0.1)  # MSE = 0.01 -> 20 dB
    assert math.isclose(psnr(image, target), 20.0, rel_tol=1e-6)
    assert psnr(target, target) == math.inf
