"""The frames of the web viewer: a browser camera as our camera, frame sizes, and the colouring
of each render mode.

Cameras. viser reports a client camera as `wxyz` (the rotation R_world_camera as a unit
quaternion w, x, y, z) and `position` (the camera centre in the world frame), with OpenCV camera
axes (+x right, +y down, +z forward: the same axes as our camera JSON), plus the vertical field of
view `fov` (radians) and the canvas size. `viewer_view` turns that into our world-to-camera
`viewmat` = inverse([[R, t], [0, 1]]) and a centred pinhole K with square pixels for the render
size (the canvas' aspect, its long side at most the page's resolution setting). A dataset camera
is shown through its vertical field of view 2 atan(H / (2 fy)) about the image centre: a
principal point off the centre or fx != fy are not reproduced.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import viser.transforms as vtf

from taichi_3dgs.viewer.geometry import invert_rigid, rigid_transform
from taichi_3dgs.viewer.rendering import RenderedView, to_uint8

_QUANTILE_SAMPLES = 1 << 20

RENDER_MODES = ("RGB", "depth", "alpha")

DEPTH_PERCENTILES = (1.0, 99.0)
"""The depth view maps this percentile range of the drawn pixels' depths (alpha > 0.5) to white
(near) .. dark grey (far), so a few floaters do not flatten the contrast."""


def render_size(aspect: float, max_side: int) -> tuple[int, int]:
    """(width, height) in pixels of a frame with `aspect` = width / height whose long side is
    `max_side` (each side at least 1)."""
    if aspect >= 1.0:
        return max_side, max(1, round(max_side / aspect))
    return max(1, round(max_side * aspect)), max_side


def viewer_view(wxyz: np.ndarray, position: np.ndarray, fov_y: float, aspect: float, max_side: int
                ) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Our camera for a viser client camera (module docstring: conventions).

    The image spans the canvas: vertical field of view `fov_y`, horizontal 2 atan(aspect
    tan(fov_y / 2)), principal point at the centre; fx and fy are set from the two fields of view
    separately, so a rounded render size still maps exactly onto the canvas.

    Args:
        wxyz: [4] unit quaternion (w, x, y, z) of R_world_camera (OpenCV camera axes).
        position: [3] camera centre, world frame.
        fov_y: vertical field of view in radians, in (0, pi).
        aspect: canvas width / height.
        max_side: long side of the rendered frame in pixels.

    Returns:
        (viewmat [4, 4] float64 world-to-camera, K [3, 3] float64 pixels, width, height).

    Raises:
        ValueError: fov_y outside (0, pi), aspect <= 0 or max_side < 1.
    """
    if not 0.0 < fov_y < math.pi or not aspect > 0.0 or max_side < 1:
        raise ValueError(f"viewer camera: expected 0 < fov_y < pi, aspect > 0, max_side >= 1; got "
                         f"fov_y={fov_y}, aspect={aspect}, max_side={max_side}")
    width, height = render_size(aspect, max_side)
    tan_half_y = math.tan(fov_y / 2.0)
    K = np.array([[width / (2.0 * aspect * tan_half_y), 0.0, width / 2.0],
                  [0.0, height / (2.0 * tan_half_y), height / 2.0],
                  [0.0, 0.0, 1.0]])
    T_world_camera = rigid_transform(vtf.SO3(np.asarray(wxyz, dtype=np.float64)).as_matrix(),
                                     np.asarray(position, dtype=np.float64))
    return invert_rigid(T_world_camera), K, width, height


def vertical_fov(K: np.ndarray, height: int) -> float:
    """Vertical field of view 2 atan(height / (2 fy)) in radians of pinhole intrinsics K [3, 3]."""
    return 2.0 * math.atan(height / (2.0 * float(K[1, 1])))


def colorize(view: RenderedView, mode: str) -> np.ndarray:
    """The frame to show for a render mode, [H, W, 3] uint8.

    "RGB": the colour (clamped to [0, 1]); "alpha": the accumulated opacity as grey; "depth": grey
    from white (near) to dark grey (far) over the `DEPTH_PERCENTILES` range of the depths where
    alpha > 0.5, black where nothing is drawn.

    Raises:
        ValueError: an unknown mode.
    """
    if mode == "RGB":
        return to_uint8(view.image)
    if mode == "alpha":
        return to_uint8(view.alpha[..., None].expand(*view.alpha.shape, 3))
    if mode != "depth":
        raise ValueError(f"render mode {mode!r}; expected one of {RENDER_MODES}")
    solid = view.alpha > 0.5
    grey = torch.zeros_like(view.depth)
    if bool(solid.any()):
        depths = view.depth[solid]
        depths = depths[::max(1, len(depths) // _QUANTILE_SAMPLES)]  # torch.quantile takes < 2^24 values
        low, high = torch.quantile(depths, torch.tensor(DEPTH_PERCENTILES, device=depths.device) / 100.0)
        nearness = 1.0 - ((view.depth - low) / (high - low).clamp_min(1e-12)).clamp(0.0, 1.0)
        grey = torch.where(solid, 0.2 + 0.8 * nearness, grey)
    return to_uint8(grey[..., None].expand(*grey.shape, 3))
