"""Independent float64 NumPy/SciPy references of PSNR and the official 3DGS SSIM, for tests.

Written from the definitions (Wang et al. 2004, eq. 13 with the 11x11 Gaussian window of sigma
1.5, zero padding as graphdeco `_ssim`), not from taichi_3dgs.metrics.
"""
import numpy as np
from scipy.ndimage import correlate


def reference_psnr(pred: np.ndarray, gt: np.ndarray) -> float:
    """PSNR in dB (peak 1) of two [H, W, C] arrays in [0, 1]."""
    return float(10.0 * np.log10(1.0 / np.mean((pred.astype(np.float64) - gt) ** 2)))


def reference_ssim(pred: np.ndarray, gt: np.ndarray) -> float:
    """Mean SSIM of two [H, W, C] arrays in [0, 1]; 2D window, zero padding, per channel."""
    taps = np.arange(11) - 5
    window_1d = np.exp(-taps ** 2 / (2 * 1.5 ** 2))
    window = np.outer(window_1d, window_1d)
    window /= window.sum()
    values = []
    for channel in range(pred.shape[2]):
        x = pred[..., channel].astype(np.float64)
        y = gt[..., channel].astype(np.float64)

        def blur(image):
            return correlate(image, window, mode="constant", cval=0.0)

        mu_x, mu_y = blur(x), blur(y)
        var_x, var_y = blur(x * x) - mu_x ** 2, blur(y * y) - mu_y ** 2
        cov = blur(x * y) - mu_x * mu_y
        c1, c2 = 0.01 ** 2, 0.03 ** 2
        values.append((2 * mu_x * mu_y + c1) * (2 * cov + c2)
                      / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2)))
    return float(np.mean(values))
