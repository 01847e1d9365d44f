"""Shared inputs of the viewer tests: the real trained scene and small camera JSON fixtures."""
import json
from pathlib import Path

import numpy as np
from conftest import dataset_path


def trained_ply_path() -> Path:
    """The real graphdeco 7k-iteration scene (9,080 Gaussians, no cameras)."""
    return dataset_path("3dgs_trained_ply") / "point_cloud" / "iteration_7000" / "point_cloud.ply"


def write_camera_json(path: Path, poses: list[np.ndarray], K: np.ndarray, width: int, height: int,
                      image_names: list[str] | None = None) -> Path:
    """A camera JSON in the layout of FORMATS.md "Camera JSON" (image paths relative to it)."""
    records = [{
        "image_path": image_names[index] if image_names else f"images/{index:03d}.png",
        "T_pointcloud_camera": np.asarray(pose).tolist(),
        "camera_intrinsics": np.asarray(K).tolist(),
        "camera_width": width,
        "camera_height": height,
        "camera_id": 0,
    } for index, pose in enumerate(poses)]
    path.write_text(json.dumps(records), encoding="utf-8")
    return path
