"""Frames of NeRF-style `transforms*.json` files (NeRF-synthetic, Instant-NGP, BlenderNeRF).

Format (Mildenhall et al. 2020 data release; Instant-NGP's extensions, instant-ngp
docs/nerf_dataset_tips.md): a JSON object with `frames`, each with `file_path` and
`transform_matrix` (4x4 camera-to-world, OpenGL camera axes: x right, y up, looking down -z).
Intrinsics are global or per frame: `fl_x`, `fl_y`, `cx`, `cy`, `w`, `h`, or `camera_angle_x`
(horizontal field of view, fx = 0.5 w / tan(0.5 camera_angle_x)) with the principal point at the
image centre; OpenCV distortion `k1, k2, k3, k4, p1, p2` and `is_fisheye`. Instant-NGP puts pixel
centres at +0.5 like COLMAP and us, so cx, cy are used as given.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pycolmap
from tqdm import tqdm

from taichi_3dgs.data.camera_checks import rigid_transform_problem
from taichi_3dgs.data.cameras import CameraRecord, read_json_file
from taichi_3dgs.data.prepared_dataset import IMAGES_DIR
from taichi_3dgs.data.undistortion import camera_record_for_image, image_size

# Flipping the camera's y and z axes turns OpenGL camera axes (y up, looking down -z) into
# OpenCV's (y down, looking down +z): T_opencv = T_opengl @ diag(1, -1, -1, 1).
OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])
INTRINSIC_KEYS = ("w", "h", "fl_x", "fl_y", "cx", "cy", "camera_angle_x", "camera_angle_y",
                  "k1", "k2", "k3", "k4", "p1", "p2", "is_fisheye")
# NeRF-synthetic file paths have no extension ("./train/r_0").
IMPLICIT_EXTENSIONS = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True, eq=False)
class NerfFrame:
    """One frame whose image exists.

    Attributes:
        image_path: absolute path of the image.
        name: the image's path relative to the image root (posix), used to name undistorted copies.
        camera: its camera as a pycolmap.Camera (PINHOLE, OPENCV, FULL_OPENCV or OPENCV_FISHEYE)
            for an image of camera.width x camera.height pixels.
        T_pointcloud_camera: [4, 4] float64 camera-to-world with OpenCV camera axes.
    """

    image_path: Path
    name: str
    camera: pycolmap.Camera
    T_pointcloud_camera: np.ndarray


def _number(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: field {key!r} is {value!r}; expected a finite number")
    return float(value)


def _transform(where: str, value: Any) -> np.ndarray:
    expected = "a 4x4 (or 3x4) list of finite numbers, camera-to-world"
    rows_ok = isinstance(value, list) and len(value) in (3, 4) and all(
        isinstance(row, list) and len(row) == 4 for row in value)
    if not rows_ok:
        raise ValueError(f"{where}: field 'transform_matrix' is {str(value)[:80]}; expected {expected}")
    rows = [[_number(where, "transform_matrix", number) for number in row] for row in value]
    matrix = np.eye(4)
    matrix[:len(rows)] = rows
    problem = rigid_transform_problem(matrix)
    if problem is not None:
        # The same check as the camera JSON reader's, so a converted dataset always trains.
        raise ValueError(f"{where}: field 'transform_matrix' {problem}; expected a rigid camera-to-world "
                         "transform (orthonormal rotation, det +1, last row [0, 0, 0, 1])")
    return matrix


def _camera(where: str, intrinsics: dict[str, Any], image_path: Path) -> pycolmap.Camera:
    if "w" in intrinsics and "h" in intrinsics:
        width, height = (_number(where, key, intrinsics[key]) for key in ("w", "h"))
        if width != int(width) or height != int(height) or width <= 0 or height <= 0:
            raise ValueError(f"{where}: image size w={width}, h={height}; expected positive integers")
        width, height = int(width), int(height)
    else:
        width, height = image_size(image_path)
    if "fl_x" in intrinsics:
        fx = _number(where, "fl_x", intrinsics["fl_x"])
    elif "camera_angle_x" in intrinsics:
        fx = 0.5 * width / math.tan(0.5 * _number(where, "camera_angle_x", intrinsics["camera_angle_x"]))
    else:
        raise ValueError(f"{where}: missing key 'fl_x' or 'camera_angle_x'; expected one of them, in the "
                         "frame or at the top level")
    if "fl_y" in intrinsics:
        fy = _number(where, "fl_y", intrinsics["fl_y"])
    elif "camera_angle_y" in intrinsics:
        fy = 0.5 * height / math.tan(0.5 * _number(where, "camera_angle_y", intrinsics["camera_angle_y"]))
    else:
        fy = fx
    if not (fx > 0 and fy > 0):
        raise ValueError(f"{where}: focal lengths fx={fx}, fy={fy}; expected positive values")
    cx = _number(where, "cx", intrinsics.get("cx", width / 2))
    cy = _number(where, "cy", intrinsics.get("cy", height / 2))
    k1, k2, k3, k4, p1, p2 = (_number(where, key, intrinsics.get(key, 0.0))
                              for key in ("k1", "k2", "k3", "k4", "p1", "p2"))
    if intrinsics.get("is_fisheye", False):
        model, params = "OPENCV_FISHEYE", [fx, fy, cx, cy, k1, k2, k3, k4]
    elif k4:
        raise ValueError(f"{where}: field 'k4' is {k4} without 'is_fisheye'; expected k4 only for fisheye "
                         "cameras (perspective distortion is k1, k2, k3, p1, p2)")
    elif k3:
        # OpenCV's 5-coefficient model = COLMAP FULL_OPENCV with k4 = k5 = k6 = 0.
        model, params = "FULL_OPENCV", [fx, fy, cx, cy, k1, k2, p1, p2, k3, 0.0, 0.0, 0.0]
    elif k1 or k2 or p1 or p2:
        model, params = "OPENCV", [fx, fy, cx, cy, k1, k2, p1, p2]
    else:
        model, params = "PINHOLE", [fx, fy, cx, cy]
    camera = pycolmap.Camera.create_from_model_name(0, model, fx, width, height)
    camera.params = params
    return camera


def _find_image(root: Path, file_path: str) -> Path | None:
    candidate = root / file_path
    if candidate.is_file():
        return candidate
    if not candidate.suffix:
        for extension in IMPLICIT_EXTENSIONS:
            if candidate.with_name(candidate.name + extension).is_file():
                return candidate.with_name(candidate.name + extension)
    return None


def warn_missing_frames(missing: Sequence[str]) -> None:
    """One warning counting the frames skipped because their image file does not exist."""
    if missing:
        warnings.warn(f"skipped {len(missing)} frame(s) whose image file does not exist "
                      f"(e.g. {', '.join(missing[:3])})", stacklevel=3)


def read_transforms_json(path: str | os.PathLike,
                         image_root: str | os.PathLike | None = None) -> tuple[list[NerfFrame], list[str]]:
    """Read the frames of a transforms JSON file whose images exist.

    Args:
        path: the JSON file.
        image_root: folder `file_path` values are relative to; default the JSON file's folder.

    Returns:
        (frames whose image exists, in file order; the `file_path` of every frame whose image is
        missing). A `file_path` without extension also matches .png, .jpg or .jpeg.

    Raises:
        FileNotFoundError: the JSON file does not exist.
        ValueError: invalid JSON, no `frames` list, a frame missing `file_path` or
            `transform_matrix`, missing or invalid intrinsics; the message names the file, the
            frame index and the field.
    """
    path = Path(path)
    content = read_json_file(path, "a NeRF transforms object")
    if not isinstance(content, dict) or not isinstance(content.get("frames"), list):
        raise ValueError(f"{path}: expected a JSON object with a 'frames' list (NeRF / Instant-NGP transforms)")
    root = Path(os.path.abspath(image_root if image_root is not None else path.parent))
    global_intrinsics = {key: content[key] for key in INTRINSIC_KEYS if key in content}
    frames, missing = [], []
    for index, raw in enumerate(content["frames"]):
        where = f"{path}: frame {index}"
        if not isinstance(raw, dict):
            raise ValueError(f"{where} is a {type(raw).__name__}; expected a JSON object")
        for key in ("file_path", "transform_matrix"):
            if key not in raw:
                raise ValueError(f"{where}: missing key {key!r}; expected 'file_path' and 'transform_matrix'")
        file_path = raw["file_path"]
        if not isinstance(file_path, str) or not file_path:
            raise ValueError(f"{where}: field 'file_path' is {file_path!r}; expected a non-empty path string")
        T_opengl = _transform(where, raw["transform_matrix"])
        image_path = _find_image(root, file_path)
        if image_path is None:
            missing.append(file_path)
            continue
        intrinsics = {**global_intrinsics, **{key: raw[key] for key in INTRINSIC_KEYS if key in raw}}
        camera = _camera(where, intrinsics, image_path)
        name = Path(os.path.relpath(image_path, root))
        if name.parts[0] == "..":
            name = Path(image_path.name)
        frames.append(NerfFrame(image_path=image_path, name=name.as_posix(), camera=camera,
                                T_pointcloud_camera=T_opengl @ OPENGL_TO_OPENCV))
    return frames, missing


def camera_records(frames: Sequence[NerfFrame], folder: Path) -> list[CameraRecord]:
    """Pinhole records of `frames`; distorted images are undistorted into `folder`/images/<name>."""
    return [camera_record_for_image(frame.image_path, frame.camera, frame.T_pointcloud_camera,
                                    folder / IMAGES_DIR / frame.name)
            for frame in tqdm(frames, desc="cameras", unit="image", disable=None)]
