"""Photometric losses and image metrics.

The training loss is the 3DGS paper's eq. 7: (1 - lambda) L1 + lambda (1 - SSIM), with the SSIM of
the official code (graphdeco-inria `utils/loss_utils.py`, after Wang et al. 2004): an 11 x 11
Gaussian window of sigma 1.5 applied per channel with zero padding ("same" size map), C1 = 0.01^2,
C2 = 0.03^2, averaged over the map. The window is separable, so it is applied as two 1D passes,
which is the same sum as the 2D outer-product window.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F

SSIM_C1 = 0.01**2
SSIM_C2 = 0.03**2


def gaussian_window_1d(window_size: int, sigma: float, dtype=torch.float32, device=None) -> torch.Tensor:
    """Normalised 1D Gaussian weights [window_size], centred on the middle tap."""
    x = torch.arange(window_size, dtype=dtype, device=device) - (window_size // 2)
    w = torch.exp(-(x**2) / (2.0 * sigma**2))
    return w / w.sum()


def _masked_mean(values: torch.Tensor, mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Mean of values [H, W, C] over the pixels where mask [H, W] (bool) is true."""
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype)[..., None].expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def l1_loss(image: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean absolute error of image vs target [H, W, C] over the pixels where mask [H, W] is true."""
    return _masked_mean((image - target).abs(), mask)


def ssim_map(
    image: torch.Tensor, target: torch.Tensor, window_size: int = 11, sigma: float = 1.5
) -> torch.Tensor:
    """Per-pixel, per-channel SSIM [H, W, C] of image vs target [H, W, C] (values in [0, 1]).

    Means, variances and covariance are Gaussian-window weighted with zero padding, as the
    official `_ssim`; differentiable in both arguments.
    """
    window = gaussian_window_1d(window_size, sigma, image.dtype, image.device)
    channels = image.shape[-1]
    pad = window_size // 2
    kernel_x = window.view(1, 1, 1, -1).expand(channels, 1, 1, window_size)
    kernel_y = window.view(1, 1, -1, 1).expand(channels, 1, window_size, 1)

    def blur(x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, kernel_x, padding=(0, pad), groups=channels)
        return F.conv2d(x, kernel_y, padding=(pad, 0), groups=channels)

    x = image.permute(2, 0, 1)[None]
    y = target.permute(2, 0, 1)[None]
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov_xy = blur(x * y) - mu_x * mu_y
    numerator = (2 * mu_x * mu_y + SSIM_C1) * (2 * cov_xy + SSIM_C2)
    denominator = (mu_x**2 + mu_y**2 + SSIM_C1) * (var_x + var_y + SSIM_C2)
    return (numerator / denominator)[0].permute(1, 2, 0)


def ssim(
    image: torch.Tensor,
    target: torch.Tensor,
    mask: Optional[torch.Tensor] = None,
    window_size: int = 11,
    sigma: float = 1.5,
) -> torch.Tensor:
    """Mean SSIM (scalar tensor) of image vs target [H, W, C] over the pixels where mask is true."""
    return _masked_mean(ssim_map(image, target, window_size, sigma), mask)


def psnr(image: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]: 10 log10(1 / MSE) (inf if equal)."""
    mse = float(_masked_mean((image.detach() - target.detach()) ** 2, mask))
    return math.inf if mse == 0.0 else -10.0 * math.log10(mse)
