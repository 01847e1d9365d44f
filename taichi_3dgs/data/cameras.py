"""Camera records and the camera JSON files (`train.json`, `val.json`).

The JSON format is the one of the original Taichi 3DGS project (wanmeihuali/
taichi_3d_gaussian_splatting), described in docs/FORMATS.md "Camera JSON": an array of records with
`image_path`, `T_pointcloud_camera` (4x4 camera-to-world, OpenCV camera axes: x right, y down,
z forward), `camera_intrinsics` (3x3 K in pixels), `camera_width`, `camera_height`, `camera_id`, an
optional `mask_path` and an optional depth map (`depth_path`, `depth_type`, `depth_scale`; read by
`depth_maps`).

The checks every camera reader applies live here: `rigid_transform_problem` (poses; its
rotation block by `rotation_problem`, which the viewer's pose checks share),
`pinhole_intrinsics_problem` (K) and `check_resampled_size` (an image against its camera's size).
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
from taichi_3dgs.data.depth_maps import DEPTH_SUFFIXES, DEPTH_TYPES

REQUIRED_KEYS = ("image_path", "T_pointcloud_camera", "camera_intrinsics", "camera_width", "camera_height")
OPTIONAL_KEYS = ("camera_id", "mask_path", "depth_path", "depth_type", "depth_scale")

# Largest |R^T R - I| entry accepted in a pose's rotation block. Poses stored in float32 are about
# 1e-7 off (the real NeRF and Instant-NGP files of the test data are within 3e-6); a scaled or
# sheared pose is off by about twice its scale error, so 1e-3 still refuses a 0.1 % scale.
ROTATION_TOLERANCE = 1e-3
ROTATION_EXPECTED = f"a proper rotation (R^T R = I within {ROTATION_TOLERANCE:g}, det R = +1)"
RIGID_TRANSFORM_EXPECTED = f"a finite rigid transform [[R, t], [0, 0, 0, 1]] with R {ROTATION_EXPECTED}"
PINHOLE_EXPECTED = "finite [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0 (pixels)"
# An image resampled to another size has each side rounded to whole pixels (0.5 px each); the
# short side predicted from the long side's scale is then off by at most 0.5 + 0.5 * short / long.
ASPECT_TOLERANCE_PX = 1.0


def rotation_problem(rotation: np.ndarray) -> str | None:
    """What keeps `rotation` from being a proper rotation matrix, or None when it is one.

    Args:
        rotation: [3, 3] float array (any float dtype; checked in float64).

    Returns:
        A phrase that completes "<field> ..." (e.g. "is a reflection ..."), or None when the shape
        is [3, 3], the entries are finite, R is orthonormal (max |R^T R - I| <=
        ROTATION_TOLERANCE) and det R > 0 (no reflection).
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape != (3, 3):
        return f"has shape {list(rotation.shape)}, not [3, 3]"
    if not np.isfinite(rotation).all():
        return "has a non-finite entry"
    error = float(np.abs(rotation.T @ rotation - np.eye(3)).max())
    if error > ROTATION_TOLERANCE:
        return f"is not orthonormal (max |R^T R - I| = {error:.3g})"
    if np.linalg.det(rotation) < 0:
        return "is a reflection (det R = -1), not a rotation"
    return None


def rigid_transform_problem(matrix: np.ndarray) -> str | None:
    """What keeps `matrix` from being a proper rigid transform, or None when it is one.

    Args:
        matrix: [4, 4] float array, a camera-to-world or world-to-camera pose.

    Returns:
        A phrase that completes "<field> ..." (e.g. "has last row [0, 0, 0, 0]"), or None when the
        shape is [4, 4], the entries are finite, the last row is [0, 0, 0, 1] and the rotation
        block R passes `rotation_problem`. The inverse of such a transform is one too, so the check
        serves both directions.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (4, 4):
        return f"has shape {list(matrix.shape)}, not [4, 4]"
    if not np.isfinite(matrix).all():
        return "has a non-finite entry"
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0]):
        return f"has last row {matrix[3].tolist()}"
    problem = rotation_problem(matrix[:3, :3])
    return None if problem is None else f"has a rotation block that {problem}"


def project_points(points: np.ndarray, viewmat: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pinhole projection of world points: (u, v, depth), each [M] float64.

    Args:
        points: [M, 3] world-frame positions.
        viewmat: [4, 4] world-to-camera transform (OpenCV axes). K: [3, 3] zero-skew intrinsics, pixels.

    Returns:
        u, v: pixel coordinates (origin at the top-left image corner, docs/FORMATS.md), inf or nan
        where depth is 0; depth: camera z (world units; <= 0 behind the camera).
    """
    camera = points @ viewmat[:3, :3].T + viewmat[:3, 3]
    depth = camera[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * camera[:, 0] / depth + K[0, 2]
        v = K[1, 1] * camera[:, 1] / depth + K[1, 2]
    return u, v, depth


def pinhole_intrinsics_problem(K: np.ndarray) -> str | None:
    """What keeps `K` from being pinhole intrinsics, or None when it is.

    Args:
        K: [3, 3] float array in pixels.

    Returns:
        A phrase that completes "<field> ..." (e.g. "has fx = 0"), or None when the entries are
        finite, fx = K[0, 0] > 0, fy = K[1, 1] > 0, the skew K[0, 1] and K[1, 0] are 0 and the last
        row is [0, 0, 1] (the principal point cx, cy may lie anywhere, as in a cropped image).
    """
    K = np.asarray(K, dtype=np.float64)
    if not np.isfinite(K).all():
        return "has a non-finite entry"
    for name, value in (("fx", K[0, 0]), ("fy", K[1, 1])):
        if not value > 0:
            return f"has {name} = {value:g}"
    if K[0, 1] != 0 or K[1, 0] != 0:
        return f"has skew entries K[0, 1] = {K[0, 1]:g}, K[1, 0] = {K[1, 0]:g}"
    if not np.array_equal(K[2], [0.0, 0.0, 1.0]):
        return f"has last row {K[2].tolist()}"
    return None


def check_resampled_size(image_size: tuple[int, int], camera_size: tuple[int, int], where: str,
                         camera_name: str = "its camera") -> None:
    """Check that an image of `image_size` can be its camera's image resampled (same aspect ratio).

    Resampling scales both sides by one factor and rounds each to whole pixels, so the short side
    predicted from the long side's scale is within ASPECT_TOLERANCE_PX of the image's. Predicting
    the short side from the long one keeps the rounding error below 1 px for any aspect ratio.

    Args:
        image_size: (width, height) of the image file, pixels.
        camera_size: (width, height) the camera's K refers to, pixels.
        where: how the message names the image (file, and record where there is one).
        camera_name: how the message names the camera size (e.g. the fields it was read from).

    Raises:
        ValueError: the aspect ratios differ; the message names `where` and both sizes.
    """
    long_axis = 0 if camera_size[0] >= camera_size[1] else 1
    short_axis = 1 - long_axis
    predicted = image_size[long_axis] * camera_size[short_axis] / camera_size[long_axis]
    if abs(predicted - image_size[short_axis]) > ASPECT_TOLERANCE_PX:
        raise ValueError(f"{where}: image is {image_size[0]}x{image_size[1]} pixels but {camera_name} is "
                         f"{camera_size[0]}x{camera_size[1]}; expected the same aspect ratio (an image "
                         f"resampled from {camera_size[0]}x{camera_size[1]}, within {ASPECT_TOLERANCE_PX:g} px)")


def requested_size(width: int | None, height: int | None, base_width: int, base_height: int) -> tuple[int, int]:
    """The image size a user asked for with `--width` / `--height`: both given -> as given; one
    given -> the other from the aspect ratio `base_width` : `base_height` (rounded, at least 1);
    none -> the base size.

    Raises:
        ValueError: a given size is not a positive integer.
    """
    for name, value in (("width", width), ("height", height)):
        if value is not None and value <= 0:
            raise ValueError(f"--{name}: expected a positive number of pixels, got {value}")
    if width is not None and height is not None:
        return width, height
    if width is not None:
        return width, max(1, round(width * base_height / base_width))
    if height is not None:
        return max(1, round(height * base_width / base_height)), height
    return base_width, base_height


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
