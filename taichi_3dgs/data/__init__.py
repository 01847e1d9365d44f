"""Cameras, point clouds and dataset converters (no Taichi here).

    cameras           -- `CameraRecord`, camera JSON read/write (train.json, val.json)
    point_cloud       -- `PointCloud`, input point-cloud parquet read/write
    views             -- `View`: a record's image (and mask) decoded, downscaled and cached, K rescaled
    prepared_dataset  -- the folder every converter writes, and its training YAML
    undistortion      -- any COLMAP camera model -> pinhole record (pycolmap undistortion)
    colmap            -- COLMAP sparse model converter
    nerf_transforms   -- NeRF / Instant-NGP / BlenderNeRF transforms.json frames
    instant_ngp       -- Instant-NGP converter (optional mesh for the initial points)
    blender           -- BlenderNeRF / NeRF-synthetic converter
    initial_points    -- initial points from a mesh surface or the cameras' common view volume
    demo_scene        -- the procedural demo scene (numpy ray caster) that `make demo` trains
    converter_options -- validation split and initial point counts the converters offer, with defaults
    cli               -- the converters' shared command line

The names below are imported on first use, so the tools' command lines (which import
`taichi_3dgs.data.cli`) parse and answer `--help` before pandas or pycolmap load.
"""
import importlib

__all__ = ["CameraRecord", "read_cameras_json", "write_cameras_json", "PointCloud", "read_point_cloud",
           "write_point_cloud"]
_LAZY = {name: "taichi_3dgs.data.cameras" for name in __all__[:3]}
_LAZY.update({name: "taichi_3dgs.data.point_cloud" for name in __all__[3:]})


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'taichi_3dgs.data' has no attribute {name!r}")
