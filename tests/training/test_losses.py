"""The training loss's pieces with masks (the unmasked metrics: tests/test_image_metrics.py)."""
import math

import torch

from taichi_3dgs.metrics import psnr, ssim
from taichi_3dgs.training.losses import l1_loss


def test_masked_l1_averages_only_the_kept_pixels():
    image = torch.zeros(4, 5, 3)
    target = torch.zeros(4, 5, 3)
    target[:2] = 1.0  # error 1 in the top two rows, 0 elsewhere
    mask = torch.zeros(4, 5, dtype=torch.bool)
    mask[1:3] = True  # one row with error, one without
    assert float(l1_loss(image, target, mask)) == 0.5
    assert float(l1_loss(image, target)) == 0.5  # without a mask: half of the pixels differ by 1


def test_masked_psnr_ignores_the_masked_out_pixels():
    target = torch.zeros(10, 10, 3)
    image = torch.full((10, 10, 3), 0.1)  # MSE 0.01 -> 20 dB where kept
    image[:5] = 0.9  # large error, masked out
    mask = torch.zeros(10, 10, dtype=torch.bool)
    mask[5:] = True
    assert math.isclose(float(psnr(image, target, mask)), 20.0, rel_tol=1e-5)


def test_masked_ssim_ignores_the_masked_out_pixels():
    gen = torch.Generator().manual_seed(2)
    image = torch.rand(40, 40, 3, generator=gen)
    damaged = image.clone()
    damaged[:, :10] = torch.rand(40, 10, 3, generator=gen)
    mask = torch.zeros(40, 40, dtype=torch.bool)
    mask[:, 25:] = True  # more than a window radius (5 px) away from the damage
    assert math.isclose(float(ssim(damaged, image, mask)), 1.0, abs_tol=1e-6)
    assert float(ssim(damaged, image)) < 0.9
