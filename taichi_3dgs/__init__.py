"""taichi_3dgs: 3D Gaussian Splatting with a differentiable Taichi tile rasterizer.

Layout (one concept per subpackage):
    backend      -- `init_taichi`: the one place Taichi is initialised (cuda if torch sees a GPU).
    rasterizer/  -- Taichi kernels + autograd ops: projection, spherical harmonics, tile binning,
                    blending, and the `rasterize` entry point.
    data/        -- cameras (JSON), point clouds (parquet), dataset converters. No Taichi.
    scene/       -- Gaussian scene parameters and their parquet / PLY I/O. No Taichi.
    training/    -- config, losses, densification strategies, the trainer.
    viewer/      -- interactive viewer and offline renderer.
"""
from taichi_3dgs.backend import init_taichi
from taichi_3dgs.rasterizer import RasterizeOutput, RasterizerConfig, rasterize

__all__ = ["RasterizeOutput", "RasterizerConfig", "init_taichi", "rasterize"]
__version__ = "0.1.0"
