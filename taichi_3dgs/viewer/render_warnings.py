"""The warnings a render gives when its result signals a mistake rather than a scene.

A render that succeeds can still be useless: the scene is empty or degenerate (`diagnose_scene`),
or a camera sees none of it, so its image is the bare background, which points to a wrong camera
file, a coordinate-frame mix-up or the wrong scene. `gaussian_point_render.py` and the headless
orbit warn about both (`warnings.warn`, printed once each as `<prog>: warning: ...` by
`taichi_3dgs.cli.run_tool`) and still write their images.
"""
from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch

from taichi_3dgs.rasterizer import RasterizerConfig
from taichi_3dgs.scene.diagnostics import diagnose_scene
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.viewer.camera_paths import scene_bounds
from taichi_3dgs.viewer.geometry import invert_rigid

MAX_LISTED_VIEWS = 20
"""`warn_blind_views` names at most this many views, then gives their count."""


def warn_degenerate_scene(scene: GaussianScene, source: str, viewmats: Sequence[np.ndarray]) -> None:
    """Warn about each problem `diagnose_scene` finds in a scene about to be rendered.

    One warning per problem, prefixed with `source`. The scales are compared with the larger of
    the scene's `scene_bounds` radius and the median distance of the cameras from its centre, so
    a scene of a single Gaussian (radius 0) seen from afar is not flagged, while a scale of 1e13
    in a scene a few units across is. The alpha threshold is the rasterizer's default
    (`RasterizerConfig.alpha_threshold`), the one the renders use.

    Args:
        scene: the Gaussians to render.
        source: names the scene in the messages (its file).
        viewmats: [4, 4] world-to-camera matrices of the cameras that will render it; may be empty.
    """
    center, extent = scene_bounds(scene.means)
    if len(viewmats):
        eyes = np.stack([invert_rigid(np.asarray(viewmat, dtype=np.float64))[:3, 3] for viewmat in viewmats])
        extent = max(extent, float(np.median(np.linalg.norm(eyes - center, axis=1))))
    for problem in diagnose_scene(scene, extent, RasterizerConfig().alpha_threshold):
        warnings.warn(f"{source}: {problem}", stacklevel=2)


def is_blind(alpha: torch.Tensor) -> bool:
    """True when a render's [H, W] alpha is 0 at every pixel: no Gaussian drew anything, so the
    image is exactly the background (every Gaussian culled, out of view or too transparent)."""
    return not bool(alpha.any())


def warn_blind_views(indices: Sequence[int], noun: str, source: str) -> None:
    """One warning naming the views whose render is the bare background (`is_blind`); nothing
    when `indices` is empty.

    Args:
        indices: the views' indices in `source`, ascending.
        noun: what a view is called, singular ("camera", "frame").
        source: where the views come from ("val.json", "the orbit").
    """
    if not indices:
        return
    listed = ", ".join(str(index) for index in indices[:MAX_LISTED_VIEWS])
    if len(indices) > MAX_LISTED_VIEWS:
        listed += f", ... ({len(indices)} in all)"
    if len(indices) == 1:
        views = f"{noun} {listed} of {source} (its render is"
    else:
        views = f"{noun}s {listed} of {source} (their renders are"
    warnings.warn(f"no Gaussian is visible from {views} the background)", stacklevel=2)
