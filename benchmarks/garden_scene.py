"""gsplat's garden test scene as Gaussians: the benchmark scene, which the rasterizer tests also use.

gsplat's `load_test_data` (tests of nerfstudio-project/gsplat) puts Gaussians on the points of
test_garden.npz cropped to [-2, 2]^3 (111,785 points): scales U[1e-4, 0.02], normalised randn
quaternions, opacities U[0, 1]. Here the SH DC term reproduces each point's colour
((rgb - 0.5) / SH_C0, so the linear colour activation gives it back) and the higher bands are
N(0, sh_rest_std). ../shared/spec/PERFORMANCE.md defines the benchmark on this scene with camera 0
at 648x420; the tests keep a random subset at a quarter of that size.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from taichi_3dgs.color_model import NUM_SH_COEFFS, SH_C0

CROP = 2.0
"""Half the edge of the world-space crop [-CROP, CROP]^3 of the points (gsplat's)."""


def load_garden_scene(path: str | os.PathLike, n_points: int | None = None, tile: int = 1,
                      width: int | None = None, height: int | None = None, camera: int = 0,
                      sh_rest_std: float = 0.0, seed: int = 0) -> dict:
    """Gaussians on the garden points and one of the file's cameras (module docstring).

    Args:
        path: gsplat's test_garden.npz: means3d [M, 3] world points, colors [M, 3] 0..255,
            viewmats [C, 4, 4] world-to-camera, Ks [C, 3, 3] pixels, width, height.
        n_points: keep this many random points of the crop (all when None or larger).
        tile: repeat the scene on a tile x tile grid (gsplat's `scene_grid`: copies offset by the
            crop size 2 CROP along world x and y, centred on the original for odd `tile`).
        width, height: image size in pixels (default: the file's, 648x420). K is rescaled to it:
            the principal point with the image, the focal length by the larger of the two size
            ratios (a new aspect ratio crops the view, never stretches it).
        camera: index of the camera in the file.
        sh_rest_std: standard deviation of the coefficients of SH bands 1..3 (0: colours that do
            not depend on the view direction).
        seed: seed of the CPU torch generator behind every random draw (subset, then scales,
            quaternions, opacities, SH bands 1..3).

    Returns:
        dict of CPU float32 tensors means [N, 3], quats [N, 4] (w, x, y, z, unit), log_scales
        [N, 3], opacity_logits [N], sh_coeffs [N, 16, 3], viewmat [4, 4], K [3, 3], and the ints
        width, height (the arguments of `taichi_3dgs.rasterizer.rasterize`, in its order).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is not an .npz with those fields, or has no camera `camera`.
    """
    try:
        data = np.load(path)
        points, colors = data["means3d"], data["colors"]
        viewmat, K = data["viewmats"][camera], data["Ks"][camera].astype(np.float64)
        file_width, file_height = int(data["width"]), int(data["height"])
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: gsplat's garden scene (test_garden.npz) not found") from None
    except (OSError, KeyError, ValueError, IndexError) as error:
        raise ValueError(f"{path}: cannot read gsplat's garden scene, camera {camera}: {error} (expected "
                         "an .npz with means3d, colors, viewmats, Ks, width, height)") from None
    inside = np.all((points >= -CROP) & (points <= CROP), axis=1)
    means = torch.from_numpy(points[inside]).float()
    rgb = torch.from_numpy(colors[inside] / 255.0).float()
    g = torch.Generator().manual_seed(seed)
    if n_points is not None and n_points < len(means):
        keep = torch.randperm(len(means), generator=g)[:n_points]
        means, rgb = means[keep], rgb[keep]
    if tile > 1:
        offsets = torch.arange(tile) - tile // 2
        grid = torch.stack(torch.meshgrid(offsets, offsets, indexing="ij"), -1).reshape(-1, 2).float() * 2.0 * CROP
        grid = torch.cat([grid, torch.zeros(len(grid), 1)], 1)
        means = (means[None] + grid[:, None]).reshape(-1, 3)
        rgb = rgb.repeat(tile * tile, 1)
    n = len(means)
    log_scales = torch.log(torch.empty(n, 3).uniform_(1e-4, 0.02, generator=g))
    quats = torch.nn.functional.normalize(torch.randn(n, 4, generator=g), dim=-1)
    opacity_logits = torch.logit(torch.rand(n, generator=g).clamp(1e-4, 1 - 1e-4))
    if sh_rest_std > 0.0:
        sh_coeffs = torch.randn(n, NUM_SH_COEFFS, 3, generator=g) * sh_rest_std
    else:
        sh_coeffs = torch.zeros(n, NUM_SH_COEFFS, 3)
    sh_coeffs[:, 0] = (rgb - 0.5) / SH_C0
    width = file_width if width is None else width
    height = file_height if height is None else height
    if (width, height) != (file_width, file_height):
        K[:2, :2] *= max(width / file_width, height / file_height)
        K[0, 2] *= width / file_width
        K[1, 2] *= height / file_height
    return dict(means=means, quats=quats, log_scales=log_scales, opacity_logits=opacity_logits,
                sh_coeffs=sh_coeffs, viewmat=torch.from_numpy(viewmat).float(), K=torch.from_numpy(K).float(),
                width=width, height=height)
