"""Camera records and the camera JSON files (`train.json`, `val.json`).

The JSON format is the one of the original Taichi 3DGS project (wanmeihuali/
taichi_3d_gaussian_splatting), described in docs/FORMATS.md "Camera JSON": an array of records with
`image_path`, `T_pointcloud_camera` (4x4 camera-to-world, OpenCV camera axes: x right, y down,
z forward), `camera_intrinsics` (3x3 K in pixels), `camera_width`, `camera_height`, `camera_id`, an
optional `mask_path` and an optional depth map (`depth_path`, `depth_type`, `depth_scale`; read by
`depth_maps`).

The checks every camera reader applies (poses, K, image sizes) are in `camera_checks`.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from taichi_3dgs.atomic_io import write_text_atomic
from taichi_3dgs.data.camera_checks import (
    PINHOLE_EXPECTED, RIGID_TRANSFORM_EXPECTED, pinhole_intrinsics_problem, rigid_transform_problem,
)
from taichi_3dgs.data.depth_maps import DEPTH_SUFFIXES, DEPTH_TYPES

REQUIRED_KEYS = ("image_path", "T_pointcloud_camera", "camera_intrinsics", "camera_width", "camera_height")
OPTIONAL_KEYS = ("camera_id", "mask_path", "depth_path", "depth_type", "depth_scale")

def _is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) \
        and math.isfinite(value)


def _frozen_array(value: Any, shape: tuple[int, int], name: str) -> np.ndarray:
    array = np.array(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} has shape {array.shape}; expected {shape}")
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class CameraRecord:
    """One training or validation image and its pinhole camera.

    Attributes:
        image_path: absolute path of the image file (not required to exist).
        K: [3, 3] float64 intrinsics in pixels, `[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`, for an image
            of `width` x `height` pixels; pixel (u, v) = (column, row), origin at the top-left
            corner of the top-left pixel, pixel centres at +0.5 (the COLMAP convention).
        T_pointcloud_camera: [4, 4] float64 camera-to-world transform; camera axes OpenCV (x right,
            y down, z forward), world = the point-cloud frame.
        width, height: image size in pixels that `K` refers to.
        camera_id: camera index (kept for compatibility with the original project).
        mask_path: optional absolute path of an 8-bit mask (0 = ignore the pixel in the loss).
        depth_path: optional absolute path of a depth map of the image (a 16-bit PNG or a .npy
            array, `depth_maps`; not required to exist).
        depth_type: "metric" (camera z in world units) or "inverse" (relative inverse depth, up to
            scale and shift) for the values of depth_path divided by depth_scale.
        depth_scale: the depth map's values are divided by this (> 0); None = 1.

    The arrays are stored as read-only float64 copies. Equality compares every field exactly.

    Raises:
        ValueError: K is not 3x3, T is not 4x4, width/height is not a positive integer, depth_type
            is not one of DEPTH_TYPES, or depth_scale is not a finite number > 0.
    """

    image_path: Path
    K: np.ndarray
    T_pointcloud_camera: np.ndarray
    width: int
    height: int
    camera_id: int = 0
    mask_path: Path | None = None
    depth_path: Path | None = None
    depth_type: str = "metric"
    depth_scale: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "image_path", Path(self.image_path))
        for name in ("mask_path", "depth_path"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        if self.depth_type not in DEPTH_TYPES:
            raise ValueError(f"depth_type is {self.depth_type!r}; expected one of {DEPTH_TYPES}")
        if self.depth_scale is not None:
            if not _is_number(self.depth_scale) or not self.depth_scale > 0:
                raise ValueError(f"depth_scale is {self.depth_scale!r}; expected a finite number > 0")
            object.__setattr__(self, "depth_scale", float(self.depth_scale))
        object.__setattr__(self, "K", _frozen_array(self.K, (3, 3), "K"))
        object.__setattr__(self, "T_pointcloud_camera",
                           _frozen_array(self.T_pointcloud_camera, (4, 4), "T_pointcloud_camera"))
        for name in ("width", "height"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} is {value!r}; expected a positive integer")
            object.__setattr__(self, name, int(value))
        object.__setattr__(self, "camera_id", int(self.camera_id))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CameraRecord):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name))
            if isinstance(getattr(self, f.name), np.ndarray)
            else getattr(self, f.name) == getattr(other, f.name)
            for f in dataclasses.fields(self)
        )

    __hash__ = None  # type: ignore[assignment]  # holds arrays

    @property
    def viewmat(self) -> np.ndarray:
        """[4, 4] float64 world-to-camera transform, `inverse(T_pointcloud_camera)`."""
        return np.linalg.inv(self.T_pointcloud_camera)

    @property
    def camera_center(self) -> np.ndarray:
        """[3] float64 camera centre in world coordinates (translation of T_pointcloud_camera)."""
        return self.T_pointcloud_camera[:3, 3].copy()

    def scaled(self, width: int, height: int) -> "CameraRecord":
        """The same camera for the image resampled to `width` x `height` pixels.

        With the pixel origin at the image corner, resampling scales pixel coordinates linearly:
        fx, cx by width / self.width and fy, cy by height / self.height.

        Raises:
            ValueError: width or height is not a positive integer.
        """
        scale = np.diag([width / self.width, height / self.height, 1.0])
        return dataclasses.replace(self, K=scale @ self.K, width=width, height=height)


def _record_error(path: Path, index: int, field: str, expected: str, got: Any) -> ValueError:
    shown = repr(got)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return _record_problem(path, index, field, f"is {shown}", expected)


def _record_problem(path: Path, index: int, field: str, problem: str, expected: str) -> ValueError:
    return ValueError(f"{path}: record {index}: field {field!r} {problem}; expected {expected}")


def _parse_matrix(path: Path, index: int, field: str, value: Any, size: int) -> np.ndarray:
    expected = f"a {size}x{size} list of numbers"
    rows_ok = isinstance(value, list) and len(value) == size and all(
        isinstance(row, list) and len(row) == size for row in value)
    if not rows_ok:
        raise _record_error(path, index, field, expected, value)
    for row in value:
        for number in row:
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise _record_error(path, index, field, expected + " (finite)", value)
    return np.array(value, dtype=np.float64)


def _parse_size(path: Path, index: int, field: str, value: Any) -> int:
    if not _is_number(value) or value != int(value) or value <= 0:
        raise _record_error(path, index, field, "a positive integer (pixels)", value)
    return int(value)


def _parse_record(path: Path, index: int, raw: Any) -> tuple[CameraRecord, bool]:
    """Return the record and whether its image path was found only relative to the cwd."""
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: record {index} is a {type(raw).__name__}; expected a JSON object")
    for key in REQUIRED_KEYS:
        if key not in raw:
            raise ValueError(f"{path}: record {index}: missing key {key!r}; expected keys "
                             f"{', '.join(REQUIRED_KEYS)} ({', '.join(OPTIONAL_KEYS)} optional)")
    T = _parse_matrix(path, index, "T_pointcloud_camera", raw["T_pointcloud_camera"], 4)
    problem = rigid_transform_problem(T)
    if problem:
        raise _record_problem(path, index, "T_pointcloud_camera", problem,
                              f"{RIGID_TRANSFORM_EXPECTED}, camera-to-world")
    K = _parse_matrix(path, index, "camera_intrinsics", raw["camera_intrinsics"], 3)
    problem = pinhole_intrinsics_problem(K)
    if problem:
        raise _record_problem(path, index, "camera_intrinsics", problem, PINHOLE_EXPECTED)
    width = _parse_size(path, index, "camera_width", raw["camera_width"])
    height = _parse_size(path, index, "camera_height", raw["camera_height"])
    camera_id = raw.get("camera_id", 0)
    if isinstance(camera_id, bool) or not isinstance(camera_id, int):
        raise _record_error(path, index, "camera_id", "an integer", camera_id)

    depth = _parse_depth_fields(path, index, raw)

    from_cwd = False
    resolved: dict[str, Path | None] = {}
    for key in ("image_path", "mask_path", "depth_path"):
        value = raw.get(key)
        if value is None and key != "image_path":
            resolved[key] = None
            continue
        if not isinstance(value, str) or not value:
            raise _record_error(path, index, key, "a non-empty path string", value)
        resolved[key], used_cwd = _resolve_path(path.parent, value)
        from_cwd = from_cwd or used_cwd
    record = CameraRecord(image_path=resolved["image_path"], K=K, T_pointcloud_camera=T, width=width,
                          height=height, camera_id=camera_id, mask_path=resolved["mask_path"],
                          depth_path=resolved["depth_path"], **depth)
    return record, from_cwd


def _parse_depth_fields(path: Path, index: int, raw: dict) -> dict[str, Any]:
    """depth_type and depth_scale of a record (`depth_maps` says what they mean), checked against
    its depth_path: a depth map of a known suffix, and a scale for a metric 16-bit PNG, whose
    integers have no unit of their own."""
    depth_path = raw.get("depth_path")
    if depth_path is None:
        for key in ("depth_type", "depth_scale"):
            if raw.get(key) is not None:
                raise _record_problem(path, index, key, "is given without a depth_path",
                                      "it only with a depth map in depth_path")
        return {}
    if isinstance(depth_path, str) and Path(depth_path).suffix.lower() not in DEPTH_SUFFIXES:
        raise _record_error(path, index, "depth_path", f"a file ending in {' or '.join(DEPTH_SUFFIXES)} "
                            "(a 16-bit PNG or a .npy array)", depth_path)
    depth_type = raw.get("depth_type", "metric")
    if depth_type not in DEPTH_TYPES:
        raise _record_error(path, index, "depth_type", f"one of {', '.join(repr(t) for t in DEPTH_TYPES)}",
                            depth_type)
    depth_scale = raw.get("depth_scale")
    if depth_scale is not None and not (_is_number(depth_scale) and depth_scale > 0):
        raise _record_error(path, index, "depth_scale", "a finite number > 0 (the depth map's values are divided "
                            "by it)", depth_scale)
    if (depth_type == "metric" and depth_scale is None and isinstance(depth_path, str)
            and Path(depth_path).suffix.lower() == ".png"):
        raise _record_problem(path, index, "depth_scale", f"is missing for the metric 16-bit PNG {depth_path}",
                              "the PNG's value per world unit (e.g. 1000 for millimetres in a scene in "
                              "metres)")
    return {"depth_type": depth_type, "depth_scale": None if depth_scale is None else float(depth_scale)}


def _resolve_path(json_dir: Path, value: str) -> tuple[Path, bool]:
    """Resolve against the JSON folder; the original tools wrote paths relative to the cwd."""
    candidate = Path(os.path.abspath(json_dir / value))
    if Path(value).is_absolute() or candidate.exists():
        return candidate, False
    from_cwd = Path(os.path.abspath(value))
    if from_cwd.exists():
        return from_cwd, True
    return candidate, False


def read_json_file(path: Path, expected: str):
    """Parse the JSON file `path`.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: the text is not valid JSON; the message names the file and `expected`.
    """
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error}); expected {expected}") from None


def read_cameras_json(path: str | os.PathLike) -> list[CameraRecord]:
    """Read a camera JSON file (`train.json` / `val.json`, docs/FORMATS.md "Camera JSON").

    Relative `image_path` / `mask_path` / `depth_path` values are resolved against the JSON file's
    folder; when the file is not there but exists relative to the working directory (files written
    by the original project's tools), that one is used and one warning says so. Missing image and
    depth files are not an error here (whoever loads the images reports them).

    Returns:
        One `CameraRecord` per JSON record, in file order (possibly an empty list).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: invalid JSON, not a list, a record that is not an object or misses a key, a
            matrix of the wrong shape or with non-numeric or non-finite entries, a
            T_pointcloud_camera that is not a proper rigid transform (`rigid_transform_problem`),
            a K that is not pinhole intrinsics with fx, fy > 0 (`pinhole_intrinsics_problem`), or
            a width/height that is not a positive integer, or depth fields that do not fit
            (`depth_type` / `depth_scale` without a `depth_path`, a depth_path that is not a .png or
            .npy, an unknown depth_type, a depth_scale that is not > 0, a metric PNG without
            depth_scale); the message names the file, the record index, the field and what was
            expected.
    """
    path = Path(path)
    raw = read_json_file(path, "a JSON array of camera records")
    if not isinstance(raw, list):
        raise ValueError(f"{path}: top level is a JSON {type(raw).__name__}; expected an array of camera records")
    records = []
    cwd_records = 0
    for index, item in enumerate(raw):
        record, from_cwd = _parse_record(path, index, item)
        records.append(record)
        cwd_records += from_cwd
    if cwd_records:
        warnings.warn(f"{path}: {cwd_records} record(s) have image/mask paths relative to the working "
                      f"directory {os.getcwd()}, not to the JSON file's folder; rewrite the file to "
                      "make it independent of where it is read from", stacklevel=2)
    return records


def _path_for_json(path: Path, json_dir: Path) -> str:
    absolute = os.path.abspath(path)
    if Path(absolute).is_relative_to(json_dir):
        return Path(absolute).relative_to(json_dir).as_posix()
    return absolute


def write_cameras_json(path: str | os.PathLike, records: Iterable[CameraRecord]) -> None:
    """Write `records` as a camera JSON file, atomically (docs/FORMATS.md "Camera JSON").

    Image, mask and depth paths under the JSON file's folder are written relative to it (so the folder
    can be moved); others are written absolute. Numbers are written with full float64 precision,
    so `read_cameras_json` gives back equal records.

    Raises:
        OSError: the file cannot be written.
    """
    path = Path(path)
    json_dir = Path(os.path.abspath(path.parent))
    items = []
    for record in records:
        item: dict[str, Any] = {
            "image_path": _path_for_json(record.image_path, json_dir),
            "T_pointcloud_camera": record.T_pointcloud_camera.tolist(),
            "camera_intrinsics": record.K.tolist(),
            "camera_width": record.width,
            "camera_height": record.height,
            "camera_id": record.camera_id,
        }
        if record.mask_path is not None:
            item["mask_path"] = _path_for_json(record.mask_path, json_dir)
        if record.depth_path is not None:
            item["depth_path"] = _path_for_json(record.depth_path, json_dir)
            item["depth_type"] = record.depth_type
            if record.depth_scale is not None:
                item["depth_scale"] = record.depth_scale
        items.append(item)
    # One record per line: readable, and diffs show which camera changed.
    lines = ",\n".join("  " + json.dumps(item) for item in items)
    write_text_atomic(path, f"[\n{lines}\n]\n" if items else "[]\n")
