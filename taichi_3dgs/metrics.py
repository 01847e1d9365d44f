"""Image quality metrics of the 3DGS evaluation: PSNR and SSIM.

Both follow the official code (graphdeco-inria `utils/image_utils.py::psnr` and
`utils/loss_utils.py::ssim`, used by its `metrics.py`), so numbers are comparable with published
3DGS results. Images are [H, W, C] float tensors with values in [0, 1]; both functions are
differentiable torch expressions (usable in a loss).
"""
from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

SSIM_WINDOW_SIZE = 11
SSIM_SIGMA = 1.5
SSIM_C1 = 0.01 ** 2  # (K1 L)^2 with L = 1 (Wang et al. 2004, eq. 13)
SSIM_C2 = 0.03 ** 2  # (K2 L)^2

MIN_MSE = 1e-10
"""Identical images would give an infinite PSNR; the MSE is floored here, capping PSNR at 100 dB."""


def _check_pair(pred: torch.Tensor, gt: torch.Tensor) -> None:
    if pred.ndim != 3 or pred.shape != gt.shape or not pred.is_floating_point() \
            or not gt.is_floating_point():
        raise ValueError(f"expected two float [H, W, C] images of one shape, got "
                         f"{list(pred.shape)} {pred.dtype} and {list(gt.shape)} {gt.dtype}")
    if pred.numel() == 0:
        raise ValueError(f"expected non-empty images, got shape {list(pred.shape)}")


def masked_mean(values: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean of values [H, W, C] over the pixels where mask [H, W] (bool) is true (all if None).

    An all-false mask gives 0 rather than NaN.
    """
    if mask is None:
        return values.mean()
    weights = mask.to(values.dtype)[..., None].expand_as(values)
    return (values * weights).sum() / weights.sum().clamp_min(1.0)


def psnr(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, peak 1: 10 log10(1 / max(MSE, MIN_MSE)).

    Args:
        pred, gt: [H, W, C] float tensors in [0, 1], same shape, dtype and device.
        mask: optional [H, W] bool, the pixels that count.

    Returns:
        Scalar tensor (dB), MSE over the counted pixels and all channels.

    Raises:
        ValueError: shapes differ, are not [H, W, C] floats, or are empty.
    """
    _check_pair(pred, gt)
    mse = masked_mean((pred - gt) ** 2, mask).clamp_min(MIN_MSE)
    return -10.0 * torch.log10(mse)


def gaussian_window(size: int = SSIM_WINDOW_SIZE, sigma: float = SSIM_SIGMA,
                    dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
                    ) -> torch.Tensor:
    """[size] normalised 1D Gaussian weights exp(-(x - size//2)^2 / (2 sigma^2)) / sum."""
    x = torch.arange(size, dtype=dtype, device=device) - size // 2
    weights = torch.exp(-(x ** 2) / (2.0 * sigma ** 2))
    return weights / weights.sum()


@functools.lru_cache(maxsize=8)
def _shared_window(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """`gaussian_window`, built once per setting (ssim_map runs every training step); read only."""
    return gaussian_window(size, sigma, dtype=dtype, device=device)


def ssim_map(pred: torch.Tensor, gt: torch.Tensor, window_size: int = SSIM_WINDOW_SIZE,
             sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Per-pixel, per-channel SSIM [H, W, C] (Wang et al., IEEE TIP 2004, eq. 13) as the official
    3DGS code computes it.

    Local means, variances and covariance use a window_size x window_size Gaussian window
    (official: 11, sigma 1.5) per channel with zero padding, so the map has the image's size
    (official `_ssim`: conv2d with padding = window // 2). The 2D window is the outer product of
    `gaussian_window`, applied as two 1D passes. Differentiable in both arguments.

    Args:
        pred, gt: [H, W, C] float tensors in [0, 1], same shape, dtype and device.
        window_size, sigma: the Gaussian window (pixels).

    Raises:
        ValueError: shapes differ, are not [H, W, C] floats, or are empty.
    """
    _check_pair(pred, gt)
    channels, pad = pred.shape[2], window_size // 2
    window = _shared_window(window_size, sigma, pred.dtype, pred.device)
    kernel_x = window.view(1, 1, 1, -1).expand(channels, 1, 1, window_size)
    kernel_y = window.view(1, 1, -1, 1).expand(channels, 1, window_size, 1)

    def blur(image: torch.Tensor) -> torch.Tensor:
        image = F.conv2d(image, kernel_x, padding=(0, pad), groups=channels)
        return F.conv2d(image, kernel_y, padding=(pad, 0), groups=channels)

    x, y = pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None]
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov_xy = blur(x * y) - mu_x * mu_y
    values = ((2.0 * mu_x * mu_y + SSIM_C1) * (2.0 * cov_xy + SSIM_C2)
              / ((mu_x ** 2 + mu_y ** 2 + SSIM_C1) * (var_x + var_y + SSIM_C2)))
    return values[0].permute(1, 2, 0)


def ssim(pred: torch.Tensor, gt: torch.Tensor, mask: torch.Tensor | None = None,
         window_size: int = SSIM_WINDOW_SIZE, sigma: float = SSIM_SIGMA) -> torch.Tensor:
    """Mean SSIM (scalar tensor, 1 for identical images) over the pixels where mask [H, W] is
    true (all if None); see `ssim_map`.

    Raises:
        ValueError: shapes differ, are not [H, W, C] floats, or are empty.
    """
    return masked_mean(ssim_map(pred, gt, window_size, sigma), mask)
