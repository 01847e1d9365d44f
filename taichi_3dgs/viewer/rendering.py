"""Forward-only rendering of a Gaussian scene into one camera, and 8-bit image output.

The one place the viewer, the headless orbit and `gaussian_point_render.py` call the rasterizer.
"""
from __future__ import annotations

import os

import numpy as np
import torch
from PIL import Image

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.rasterizer import RasterizerConfig, rasterize
from taichi_3dgs.scene.gaussians import GaussianScene


@torch.no_grad()
def render_image(scene: GaussianScene | None, viewmat: np.ndarray, K: np.ndarray, width: int,
                 height: int, background: tuple[float, float, float] = (0.0, 0.0, 0.0)
                 ) -> torch.Tensor:
    """Render `scene` from one pinhole camera (rasterizer defaults, the scene's colour model).

    Args:
        scene: Gaussians in the world frame, on the Taichi device (`backend.torch_device()`),
            or None for an empty scene (the background).
        viewmat: [4, 4] world-to-camera (OpenCV axes), any float dtype.
        K: [3, 3] pinhole intrinsics in pixels for `width` x `height`.
        width, height: image size in pixels.
        background: RGB in [0, 1] behind the Gaussians.

    Returns:
        [height, width, 3] float32 RGB tensor on the scene's device, values >= 0 (not clamped).

    Raises:
        ValueError: from `rasterize` (bad shapes, non-positive size).
    """
    device = scene.means.device if scene is not None else torch.device("cpu")
    background_tensor = torch.tensor(background, dtype=torch.float32, device=device)
    if scene is None:
        return background_tensor.expand(height, width, 3).clone()
    return rasterize(
        scene.means, scene.quats, scene.log_scales, scene.opacity_logits, scene.sh_coeffs,
        viewmat=torch.tensor(np.asarray(viewmat), dtype=torch.float32, device=device),
        K=torch.tensor(np.asarray(K), dtype=torch.float32, device=device),
        width=width, height=height, sh_degree=scene.sh_degree, background=background_tensor,
        config=RasterizerConfig(color_activation=scene.color_activation),
    ).image


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[H, W, 3] float image in [0, 1] -> [H, W, 3] uint8 numpy (clamped, rounded to nearest,
    the quantisation of the official render.py's saved PNGs)."""
    return (image.detach().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu().numpy()


def save_png(path: str | os.PathLike, pixels: np.ndarray) -> None:
    """Write a [H, W, 3] uint8 array as an RGB PNG, atomically (parent folders are created)."""
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
