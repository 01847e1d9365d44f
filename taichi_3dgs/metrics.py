"""Image quality metrics of the 3DGS evaluation: PSNR and SSIM.

Both follow the official code (graphdeco-inria `utils/image_utils.py::psnr` and
`utils/loss_utils.py::ssim`, used by its `metrics.py`), so numbers are comparable with published
3DGS results. Images are [H, W, C] float tensors with values in [0, 1]; both functions are
differentiable torch expressions (usable in a loss).
"""
from __future__ import annotations

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


def psnr(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, peak 1: 10 log10(1 / max(MSE, MIN_MSE)).

    Args:
        pred, gt: [H, W, C] float tensors in [0, 1], same shape, dtype and device.

    Returns:
        Scalar tensor (dB), MSE over all pixels and channels.

    Raises:
        ValueError: shapes differ, are not [H, W, C] floats, or are empty.
    """
    _check_pair(pred, gt)
    mse = torch.mean((pred - gt) ** 2).clamp_min(MIN_MSE)
    return -10.0 * torch.log10(mse)


def gaussian_window(size: int = SSIM_WINDOW_SIZE, sigma: float = SSIM_SIGMA,
                    dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
                    ) -> torch.Tensor:
    """[size] normalised 1D Gaussian weights exp(-(x - size//2)^2 / (2 sigma^2)) / sum."""
    x = torch.arange(size, dtype=dtype, device=device) - size // 2
    weights = torch.exp(-(x ** 2) / (2.0 * sigma ** 2))
    return weights / weights.sum()


def ssim(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Structural similarity (Wang et al., IEEE TIP 2004) as the official 3DGS code computes it.

    Local means, variances and covariance use an 11 x 11 Gaussian window (sigma 1.5) per
    channel with zero padding, so the SSIM map has the image's size (official `_ssim`: conv2d
    with padding = window // 2); the result is the mean of the map over pixels and channels.
    The 2D window is the outer product of `gaussian_window`, applied as two 1D passes.

    Args:
        pred, gt: [H, W, C] float tensors in [0, 1], same shape, dtype and device.

    Returns:
        Scalar tensor, 1 for identical images.

    Raises:
        ValueError: shapes differ, are not [H, W, C] floats, or are empty.
    """
    _check_pair(pred, gt)
    channels, pad = pred.shape[2], SSIM_WINDOW_SIZE // 2
    window = gaussian_window(dtype=pred.dtype, device=pred.device)
    kernel_x = window.view(1, 1, 1, -1).expand(channels, 1, 1, SSIM_WINDOW_SIZE)
    kernel_y = window.view(1, 1, -1, 1).expand(channels, 1, SSIM_WINDOW_SIZE, 1)

    def blur(image: torch.Tensor) -> torch.Tensor:
        image = F.conv2d(image, kernel_x, padding=(0, pad), groups=channels)
        return F.conv2d(image, kernel_y, padding=(pad, 0), groups=channels)

    x, y = pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None]
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x ** 2
    var_y = blur(y * y) - mu_y ** 2
    cov_xy = blur(x * y) - mu_x * mu_y
    ssim_map = ((2.0 * mu_x * mu_y + SSIM_C1) * (2.0 * cov_xy + SSIM_C2)
                / ((mu_x ** 2 + mu_y ** 2 + SSIM_C1) * (var_x + var_y + SSIM_C2)))
    return ssim_map.mean()

