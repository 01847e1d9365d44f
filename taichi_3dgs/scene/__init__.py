"""Trained Gaussian scenes: the `GaussianScene` parameters and their files (parquet, PLY and the
web formats .compressed.ply, .spz, .sog, .glb, .splat).

No Taichi here: plain torch tensors, pandas/pyarrow for parquet, plyfile for PLY, numpy, gzip,
zipfile and Pillow (WebP) for the web formats.
"""
from taichi_3dgs.color_model import COLOR_ACTIVATIONS, MAX_SH_DEGREE
from taichi_3dgs.scene.color_conversion import fibonacci_sphere, sigmoid_to_linear
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.io import (export_scene, parquet_to_ply, ply_to_parquet, read_scene,
                                  write_scene)
from taichi_3dgs.scene.parquet import (TRAINED_SCENE_COLUMNS, is_trained_scene_parquet,
                                       read_scene_parquet, write_scene_parquet)
from taichi_3dgs.scene.ply import read_ply, write_ply
from taichi_3dgs.scene.spherical_harmonics import sh_basis
from taichi_3dgs.scene.splat import read_splat, write_splat

__all__ = [
    "COLOR_ACTIVATIONS", "GaussianScene", "MAX_SH_DEGREE", "TRAINED_SCENE_COLUMNS",
    "export_scene", "fibonacci_sphere", "is_trained_scene_parquet", "parquet_to_ply",
    "ply_to_parquet", "read_ply", "read_scene", "read_scene_parquet", "sh_basis",
    "read_splat", "sigmoid_to_linear", "write_ply", "write_scene", "write_scene_parquet",
    "write_splat",
]
