"""taichi_3dgs: 3D Gaussian Splatting with a differentiable Taichi tile rasterizer.

Layout (one concept per subpackage):
    backend      -- `init_taichi`: the one place Taichi is initialised (cuda if torch sees a GPU).
    color_model  -- SH constants (bands 0..3) and colour activations, shared by the rasterizer and
                    the Taichi-free subpackages.
    rotations    -- rotation math: quaternions (w, x, y, z), rotation vectors, axis-angle.
    rasterizer/  -- Taichi kernels + autograd ops: projection, spherical harmonics, tile binning,
                    blending, and the `rasterize` entry point.
    data/        -- cameras (JSON), point clouds (parquet), views (images), dataset converters. No Taichi.
    scene/       -- Gaussian scene parameters and their parquet / PLY I/O. No Taichi.
    training/    -- config, losses, densification strategies, the trainer (docs/LAYOUT.md).
    viewer/      -- interactive viewer and offline renderer.
    cli          -- the command-line conventions every tool shares (options, errors, --version).
    commands/    -- the installed `taichi-3dgs` command: one subcommand per tool, each the `main`
                    of a root script or tools/ script (`python -m taichi_3dgs` too).
    train_cli    -- `gaussian_point_train.py`'s command line (wires the web viewer into training).

`rasterize`, `RasterizerConfig`, `RasterizeOutput` and `init_taichi` are imported lazily, so the
I/O subpackages (and the scripts that use only them) never load Taichi.
"""
import importlib

__version__ = "0.1.0"
__all__ = ["RasterizeOutput", "RasterizerConfig", "init_taichi", "rasterize"]
_LAZY = {
    "init_taichi": "taichi_3dgs.backend",
    "rasterize": "taichi_3dgs.rasterizer",
    "RasterizerConfig": "taichi_3dgs.rasterizer",
    "RasterizeOutput": "taichi_3dgs.rasterizer",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'taichi_3dgs' has no attribute {name!r}")
