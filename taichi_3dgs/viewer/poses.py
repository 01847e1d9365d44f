"""`poses.pt`: a camera path for `gaussian_point_render.py` (written by
`tools/generate_ellipse_path.py`).

The file is `torch.save` of a dict (loadable with `torch.load(path, weights_only=True)`):

| key | value |
| --- | --- |
| `viewmats` | [F, 4, 4] float64 tensor, world-to-camera (OpenCV camera axes) |
| `Ks` | [F, 3, 3] float64 tensor, pinhole intrinsics in pixels for `width` x `height` |
| `width`, `height` | int, image size in pixels |

Every frame is checked on load as camera JSON records are (`taichi_3dgs.data.cameras`): each
viewmat a proper rigid transform, each K pinhole intrinsics with fx, fy > 0.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.data.camera_checks import (
    PINHOLE_EXPECTED, RIGID_TRANSFORM_EXPECTED, pinhole_intrinsics_problem, rigid_transform_problem,
)
from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.viewer.camera_paths import ellipse_path
from taichi_3dgs.viewer.geometry import invert_rigid

POSES_KEYS = ("viewmats", "Ks", "width", "height")


@dataclass(frozen=True)
class CameraPath:
    """F camera poses sharing one image size.

    Attributes:
        viewmats: [F, 4, 4] float64 world-to-camera matrices.
        Ks: [F, 3, 3] float64 intrinsics in pixels.
        width, height: image size in pixels.
    """

    viewmats: np.ndarray
    Ks: np.ndarray
    width: int
    height: int


def save_camera_path(path: str | os.PathLike, camera_path: CameraPath) -> None:
    """Write `camera_path` as a poses.pt file (module docstring), atomically.

    Raises:
        OSError: the file cannot be written.
    """
    data = {
        "viewmats": torch.from_numpy(np.asarray(camera_path.viewmats, dtype=np.float64)),
        "Ks": torch.from_numpy(np.asarray(camera_path.Ks, dtype=np.float64)),
        "width": int(camera_path.width),
        "height": int(camera_path.height),
    }
    with atomic_path(path) as tmp:
        torch.save(data, tmp)


def load_camera_path(path: str | os.PathLike) -> CameraPath:
    """Read a poses.pt file (module docstring).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not a torch file of plain tensors, a missing key, a value of the wrong
            shape/type, no frame, a frame whose viewmat is not a proper rigid transform
            (`rigid_transform_problem`: e.g. all zeros) or whose K is not pinhole intrinsics with
            fx, fy > 0 (`pinhole_intrinsics_problem`); the message names the file, the key and,
            for a bad frame, its index.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: poses file not found")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises several types for a foreign or corrupt file
        raise ValueError(f"{path}: not a poses.pt file written by torch.save ({error})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict with keys {list(POSES_KEYS)}, got a "
                         f"{type(data).__name__}")
    missing = [key for key in POSES_KEYS if key not in data]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}; expected {list(POSES_KEYS)}")
    for key in ("width", "height"):
        value = data[key]
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{path}: '{key}' is {value!r}, expected a positive int (pixels)")
    viewmats, Ks = data["viewmats"], data["Ks"]
    frames = viewmats.shape[0] if isinstance(viewmats, torch.Tensor) and viewmats.ndim == 3 else -1
    for key, value, shape in (("viewmats", viewmats, (4, 4)), ("Ks", Ks, (3, 3))):
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != (frames, *shape) \
                or not value.is_floating_point():
            got = list(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise ValueError(f"{path}: '{key}' is {got}, expected a float tensor "
                             f"[F, {shape[0]}, {shape[1]}] (F = number of viewmats)")
    if frames == 0:
        raise ValueError(f"{path}: 'viewmats' holds no frame; expected at least one camera")
    camera_path = CameraPath(viewmats.double().numpy(), Ks.double().numpy(), data["width"], data["height"])
    for frame, (viewmat, K) in enumerate(zip(camera_path.viewmats, camera_path.Ks)):
        for key, problem, expected in (
                ("viewmats", rigid_transform_problem(viewmat), f"{RIGID_TRANSFORM_EXPECTED}, world-to-camera"),
                ("Ks", pinhole_intrinsics_problem(K), PINHOLE_EXPECTED)):
            if problem:
                raise ValueError(f"{path}: frame {frame}: '{key}' {problem}; expected {expected}")
    return camera_path


def ellipse_camera_path(cameras: list[CameraRecord], n_frames: int) -> CameraPath:
    """The `ellipse_path` around a capture as a `CameraPath`, every frame with the first
    camera's K and image size.

    Raises:
        ValueError: no cameras, or what `ellipse_path` raises.
    """
    if not cameras:
        raise ValueError("ellipse path: expected at least one camera record")
    poses = ellipse_path(np.stack([camera.T_pointcloud_camera for camera in cameras]), n_frames)
    first = cameras[0]
    return CameraPath(viewmats=np.stack([invert_rigid(pose) for pose in poses]),
                      Ks=np.repeat(first.K[None], len(poses), axis=0),
                      width=first.width, height=first.height)
