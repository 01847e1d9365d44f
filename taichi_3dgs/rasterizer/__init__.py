"""The differentiable tile rasterizer: a chain of small autograd ops over Taichi kernels.

    project_gaussians -> evaluate_sh -> bin_tiles -> blend_tiles, composed by `rasterize`.
"""
from taichi_3dgs.rasterizer.binning import TileBins, bin_tiles
from taichi_3dgs.rasterizer.blending import blend_tiles
from taichi_3dgs.rasterizer.config import RasterizerConfig
from taichi_3dgs.rasterizer.projection import Projection, project_gaussians
from taichi_3dgs.rasterizer.pipeline import RasterizeOutput, activate_colors, rasterize
from taichi_3dgs.rasterizer.spherical_harmonics import evaluate_sh

__all__ = [
    "Projection", "RasterizeOutput", "RasterizerConfig", "TileBins", "activate_colors",
    "bin_tiles", "blend_tiles", "evaluate_sh", "project_gaussians", "rasterize",
]
