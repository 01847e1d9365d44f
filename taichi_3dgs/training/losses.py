"""Photometric training loss.

The 3DGS paper's eq. 7: (1 - lambda) L1 + lambda (1 - SSIM), with the official code's SSIM
(`taichi_3dgs.metrics.ssim`: 11 x 11 Gaussian window, sigma 1.5, zero padding).
"""
from typing import Optional

import torch

from taichi_3dgs.metrics import masked_mean


def l1_loss(image: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean absolute error of image vs target [H, W, C] over the pixels where mask [H, W] is true."""
    return masked_mean((image - target).abs(), mask)


