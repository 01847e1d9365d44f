"""Forward-only rendering of a Gaussian scene into one camera, and 8-bit image output.

The one place the viewer (window and web), the headless orbit and `gaussian_point_render.py` call
the rasterizer.
"""
from __future__ import annotations

import os
from dataclasses import replace
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.rasterizer import RasterizerConfig, rasterize
from taichi_3dgs.scene.gaussians import GaussianScene


class RenderedView(NamedTuple):
    """What `render_scene_view` returns (all on the scene's device).

    Attributes:
        image: [H, W, 3] float32 RGB, background composited, values >= 0 (not clamped).
        alpha: [H, W] float32 in [0, 1], 1 - final transmittance (0 where nothing is drawn).
        depth: [H, W] float32, alpha-weighted camera z in world units divided by alpha; 0 where
            alpha is 0.
    """

    image: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor


@torch.no_grad()
def render_scene_view(scene: GaussianScene | None, viewmat: np.ndarray, K: np.ndarray, width: int,
                height: int, background: tuple[float, float, float] = (0.0, 0.0, 0.0),
                sh_degree: int | None = None, near_plane: float | None = None) -> RenderedView:
    """Render `scene` from one pinhole camera (rasterizer defaults, the scene's colour model and
    `antialiased` flag, as it was trained): colour, alpha and depth.

    Args:
        scene: Gaussians in the world frame, on the Taichi device (`backend.torch_device()`),
            or None for an empty scene (the background, alpha and depth 0).
        viewmat: [4, 4] world-to-camera (OpenCV axes), any float dtype.
        K: [3, 3] pinhole intrinsics in pixels for `width` x `height`.
        width, height: image size in pixels.
        background: RGB in [0, 1] behind the Gaussians.
        sh_degree: SH bands to use, 0..3 (default: the scene's `sh_degree`).
        near_plane: camera-z in world units at or below which Gaussians are culled (default:
            `RasterizerConfig.near_plane`).

    Returns:
        `RenderedView` (image, alpha, depth).

    Raises:
        ValueError: from `rasterize` / `RasterizerConfig` (bad shapes, non-positive size,
            sh_degree outside 0..3, near_plane <= 0).
    """
    device = scene.means.device if scene is not None else torch.device("cpu")
    background_tensor = torch.tensor(background, dtype=torch.float32, device=device)
    if scene is None:
        empty = torch.zeros(height, width, dtype=torch.float32, device=device)
        return RenderedView(background_tensor.expand(height, width, 3).clone(), empty, empty.clone())
    config = RasterizerConfig(color_activation=scene.color_activation, antialiased=scene.antialiased)
    if near_plane is not None:
        config = replace(config, near_plane=near_plane)
    out = rasterize(
        scene.means, scene.quats, scene.log_scales, scene.opacity_logits, scene.sh_coeffs,
        viewmat=torch.tensor(np.asarray(viewmat), dtype=torch.float32, device=device),
        K=torch.tensor(np.asarray(K), dtype=torch.float32, device=device),
        width=width, height=height, sh_degree=scene.sh_degree if sh_degree is None else sh_degree,
        background=background_tensor, config=config,
    )
    return RenderedView(out.image, out.alpha, out.depth)


def render_image(scene: GaussianScene | None, viewmat: np.ndarray, K: np.ndarray, width: int,
                 height: int, background: tuple[float, float, float] = (0.0, 0.0, 0.0)
                 ) -> torch.Tensor:
    """The colour of `render_scene_view` (same arguments, the scene's SH degree).

    Returns:
        [height, width, 3] float32 RGB tensor on the scene's device, values >= 0 (not clamped).

    Raises:
        ValueError: from `rasterize` (bad shapes, non-positive size).
    """
    return render_scene_view(scene, viewmat, K, width, height, background).image


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """[H, W, 3] float image in [0, 1] -> [H, W, 3] uint8 numpy (clamped, rounded to nearest,
    the quantisation of the official render.py's saved PNGs)."""
    return (image.detach().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8).cpu().numpy()


def save_png(path: str | os.PathLike, pixels: np.ndarray) -> None:
    """Write a [H, W, 3] uint8 array as an RGB PNG, atomically (parent folders are created)."""
    with atomic_path(path) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
