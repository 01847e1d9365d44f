"""Independent references for the converter tests: OpenCV lens distortion and bilinear sampling.

The distortion follows the OpenCV documentation (calib3d, "Camera Calibration and 3D
Reconstruction"): x'' = x' (1 + k1 r^2 + k2 r^4) + 2 p1 x'y' + p2 (r^2 + 2 x'^2), and likewise for y'';
COLMAP's SIMPLE_RADIAL is the case fx = fy = f, k2 = p1 = p2 = 0.
"""
from __future__ import annotations

import numpy as np
from PIL import Image


def distort(x: np.ndarray, y: np.ndarray, k1: float, k2: float = 0.0, p1: float = 0.0,
            p2: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    r2 = x * x + y * y
    radial = 1.0 + k1 * r2 + k2 * r2 * r2
    return (x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x),
            y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y)


def bilinear(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sample [H, W, C] `image` at pixel coordinates (u, v), pixel centres at +0.5."""
    x, y = u - 0.5, v - 0.5
    x0 = np.clip(np.floor(x).astype(int), 0, image.shape[1] - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, image.shape[0] - 2)
    wx, wy = (x - x0)[:, None], (y - y0)[:, None]
    return (image[y0, x0] * (1 - wx) * (1 - wy) + image[y0, x0 + 1] * wx * (1 - wy)
            + image[y0 + 1, x0] * (1 - wx) * wy + image[y0 + 1, x0 + 1] * wx * wy)


def undistortion_error(source_path, undistorted_path, K_undistorted: np.ndarray, fx: float, fy: float,
                       cx: float, cy: float, k1: float, k2: float = 0.0, p1: float = 0.0, p2: float = 0.0,
                       step: int = 4) -> float:
    """Mean absolute difference (0..255) between the undistorted image and the distorted source
    sampled where the distortion model sends each undistorted pixel centre (every `step` pixels)."""
    source = np.asarray(Image.open(source_path).convert("RGB"), dtype=np.float64)
    undistorted = np.asarray(Image.open(undistorted_path).convert("RGB"), dtype=np.float64)
    rows, cols = np.mgrid[0:undistorted.shape[0]:step, 0:undistorted.shape[1]:step]
    rows, cols = rows.ravel(), cols.ravel()
    x = (cols + 0.5 - K_undistorted[0, 2]) / K_undistorted[0, 0]
    y = (rows + 0.5 - K_undistorted[1, 2]) / K_undistorted[1, 1]
    xd, yd = distort(x, y, k1, k2, p1, p2)
    sampled = bilinear(source, fx * xd + cx, fy * yd + cy)
    return float(np.abs(sampled - undistorted[rows, cols]).mean())
