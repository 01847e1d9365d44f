"""Checks of a COLMAP sparse model's files before pycolmap reads them.

pycolmap accepts some broken models without an error (a truncated cameras.bin reads as garbage, a
NaN coordinate in points3D.bin is kept) and reports others without naming a file or line ("Rig with
ID 999 does not exist" for an image whose camera is missing, "Image with ID 14 does not exist" for
a track, a failed stream check for a NaN in points3D.txt). So the files are walked first, binary
(COLMAP src/colmap/scene/reconstruction_io_binary.cc) or text (reconstruction_io_text.cc), and
every record checked: finite numbers, known camera models and ids, tracks that refer to existing
images and 2D points; the error names the file, the record or line and what was expected.
"""
from __future__ import annotations

import math
import re
import struct
from pathlib import Path
from typing import Container, Iterable, Iterator, Sequence

import pycolmap

MODEL_FILES = ("cameras", "images", "points3D")
# The line layouts of the text model files (COLMAP src/colmap/scene/reconstruction_io_text.cc).
CAMERAS_LAYOUT = "CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]"
IMAGES_LAYOUT = "IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME"
POINTS2D_LAYOUT = "POINTS2D[] as (X, Y, POINT3D_ID)"
POINTS3D_LAYOUT = "POINT3D_ID X Y Z R G B ERROR TRACK[] as (IMAGE_ID, POINT2D_IDX)"
_HEADER_COUNT = re.compile(r"#\s*Number of (cameras|images|points)\s*:\s*(\d+)")


class _BinaryWalker:
    """Steps through a COLMAP binary file, checking that every announced byte is there."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = path.read_bytes()
        self.offset = 0

    def _need(self, size: int, what: str) -> None:
        if self.offset + size > len(self.data):
            raise ValueError(f"{self.path}: truncated: {what} needs {size} bytes at byte {self.offset}, "
                             f"but the file has {len(self.data)} bytes; expected a complete COLMAP binary file")

    def read(self, fmt: str, what: str) -> tuple:
        size = struct.calcsize("<" + fmt)
        self._need(size, what)
        values = struct.unpack_from("<" + fmt, self.data, self.offset)
        self.offset += size
        return values

    def read_int32s(self, count: int, what: str) -> tuple[int, ...]:
        self._need(4 * count, what)  # before formatting: a corrupt count can be huge
        return self.read(f"{count}i", what)

    def skip(self, size: int, what: str) -> None:
        self._need(size, what)
        self.offset += size

    def skip_string(self, what: str) -> None:
        end = self.data.find(b"\0", self.offset)
        if end < 0:
            self._need(len(self.data) - self.offset + 1, what)
        self.offset = end + 1

    def finish(self, count: int, kind: str) -> None:
        extra = len(self.data) - self.offset
        if extra:
            raise ValueError(f"{self.path}: {extra} bytes after the {count} {kind} the header announces; "
                             "expected the file to end there")


def _camera_model_params() -> dict[int, tuple[str, int]]:
    models = {}
    for model in pycolmap.CameraModelId.__members__.values():
        if model.name != "INVALID":
            camera = pycolmap.Camera.create_from_model_id(0, model, 1.0, 1, 1)
            models[int(model)] = (model.name, len(camera.params))
    return models


def _shown_ids(ids: Iterable[int]) -> str:
    ids = sorted(ids)
    return ", ".join(map(str, ids[:10])) + (f", ... ({len(ids)} ids)" if len(ids) > 10 else "")


def _check_new_id(ids: Container[int], new_id: int, where: str, kind: str) -> None:
    # pycolmap stops with "Check failed: inserted" on a repeated id.
    if new_id in ids:
        raise ValueError(f"{where}: {kind} id {new_id} is defined twice; expected each {kind} id once")


def _check_camera(where: str, width: int, height: int, params: Sequence[float]) -> None:
    """The checks pycolmap skips (size) or reports without a place (non-finite parameters)."""
    if width <= 0 or height <= 0:
        raise ValueError(f"{where}: image size {width}x{height}; expected a positive WIDTH and HEIGHT (pixels)")
    if not all(math.isfinite(value) for value in params):
        raise ValueError(f"{where}: parameters {list(params)}; expected finite numbers")


def _check_image(where: str, pose: Sequence[float], camera_id: int, camera_ids: Container[int],
                 cameras_path: Path) -> None:
    """pose: QW QX QY QZ TX TY TZ (cam_from_world). pycolmap reports an unknown camera id as
    "Rig with ID <id> does not exist" and reads a zero quaternion as an undefined rotation."""
    if not all(math.isfinite(value) for value in pose):
        raise ValueError(f"{where}: pose QW QX QY QZ TX TY TZ = {list(pose)}; expected finite numbers")
    if not any(pose[:4]):
        raise ValueError(f"{where}: quaternion QW QX QY QZ is all zeros; expected a rotation (non-zero quaternion)")
    if camera_id not in camera_ids:
        raise ValueError(f"{where}: refers to camera id {camera_id}, which {cameras_path} does not define; "
                         f"expected one of its camera ids ({_shown_ids(camera_ids)})")


def _check_point(where: str, xyz: Sequence[float], track: Iterable[tuple[int, int]],
                 num_points2D: dict[int, int], images_path: Path) -> None:
    """track: (IMAGE_ID, POINT2D_IDX) pairs. pycolmap reads a non-finite binary coordinate
    silently and reports a bad track as "Image with ID <id> does not exist" or a range check."""
    for name, value in zip("XYZ", xyz):
        if not math.isfinite(value):
            raise ValueError(f"{where}: {name} = {value} is not a finite coordinate; expected finite X, Y, Z")
    for image_id, point2D_idx in track:
        if image_id not in num_points2D:
            raise ValueError(f"{where}: its track refers to image id {image_id}, which {images_path} does "
                             f"not define; expected (IMAGE_ID, POINT2D_IDX) pairs of images in it")
        if not 0 <= point2D_idx < num_points2D[image_id]:
            raise ValueError(f"{where}: its track refers to 2D point {point2D_idx} of image {image_id}, which "
                             f"has {num_points2D[image_id]} 2D points in {images_path}; expected an index "
                             f"below {num_points2D[image_id]}")


def check_binary_model(model_dir: Path) -> dict[str, int]:
    """Walk the three binary files (the layout of COLMAP's reconstruction_io_binary.cc) and check
    what pycolmap does not, or reports without naming a file; return the counts their headers
    announce."""
    models = _camera_model_params()
    cameras = _BinaryWalker(model_dir / "cameras.bin")
    (num_cameras,) = cameras.read("Q", "the camera count")
    camera_ids: set[int] = set()
    for index in range(num_cameras):
        camera_id, model_id, width, height = cameras.read("iiQQ", f"camera record {index}")
        where = f"{cameras.path}: camera record {index} (camera_id {camera_id})"
        if model_id not in models:
            known = ", ".join(f"{i} ({name})" for i, (name, _) in sorted(models.items()))
            raise ValueError(f"{where} has camera model id {model_id}; expected one of {known}")
        name, num_params = models[model_id]
        params = cameras.read(f"{num_params}d", f"the {num_params} parameters of {name} camera record {index}")
        _check_camera(where, width, height, params)
        _check_new_id(camera_ids, camera_id, where, "camera")
        camera_ids.add(camera_id)
    cameras.finish(num_cameras, "cameras")

    images = _BinaryWalker(model_dir / "images.bin")
    (num_images,) = images.read("Q", "the image count")
    num_points2D: dict[int, int] = {}
    for index in range(num_images):
        image_id, *pose, camera_id = images.read("i7di", f"image record {index}")
        where = f"{images.path}: image record {index} (image_id {image_id})"
        _check_image(where, pose, camera_id, camera_ids, cameras.path)
        _check_new_id(num_points2D, image_id, where, "image")
        images.skip_string(f"the name of image record {index}")
        (num_points2D[image_id],) = images.read("Q", f"the 2D point count of image record {index}")
        images.skip(24 * num_points2D[image_id], f"the {num_points2D[image_id]} 2D points of image record {index}")
    images.finish(num_images, "images")

    points = _BinaryWalker(model_dir / "points3D.bin")
    (num_points,) = points.read("Q", "the point count")
    point_ids: set[int] = set()
    for index in range(num_points):
        point_id, *xyz = points.read("Q3d", f"point record {index}")
        points.skip(11, f"the colour and error of point record {index}")
        (track_length,) = points.read("Q", f"the track length of point record {index}")
        track = points.read_int32s(2 * track_length, f"the {track_length} track elements of point record {index}")
        where = f"{points.path}: point record {index} (point3D_id {point_id})"
        _check_point(where, xyz, zip(track[::2], track[1::2]), num_points2D, images.path)
        _check_new_id(point_ids, point_id, where, "point3D")
        point_ids.add(point_id)
    points.finish(num_points, "points")
    return {"cameras": num_cameras, "images": num_images, "points": num_points}


def _text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number from 1, the line without surrounding white space) of a text model file."""
    with open(path, encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            yield line_number, line.strip()


def _text_records(path: Path, layout: str, min_fields: int) -> Iterator[tuple[str, list[str]]]:
    """("<path>: line N", fields) of each data line (not empty, not a # comment) with at least
    `min_fields` fields; `layout` is the line layout the error names."""
    for line_number, line in _text_lines(path):
        if line and not line.startswith("#"):
            where = f"{path}: line {line_number}"
            fields = line.split()
            if len(fields) < min_fields:
                raise ValueError(f"{where}: {len(fields)} fields; expected '{layout}'")
            yield where, fields


def _parse_fields(where: str, layout: str, names: str, fields: Sequence[str], kind: type) -> list:
    """The fields as `kind` (int or float). `names` names them in errors: one name per field
    ("X Y Z"), or one array name ("PARAMS[]") whose elements are named PARAMS[0], PARAMS[1], ..."""
    if names.endswith("[]"):
        labels = [f"{names[:-2]}[{index}]" for index in range(len(fields))]
    else:
        labels = names.split()
    values = []
    for name, text in zip(labels, fields, strict=True):
        try:
            values.append(kind(text))
        except ValueError:
            expected = "an integer" if kind is int else "a number"
            raise ValueError(f"{where}: {name} is {text!r}; expected {expected} in '{layout}'") from None
    return values


def _check_cameras_txt(path: Path) -> set[int]:
    """Check cameras.txt line by line; return its camera ids."""
    models = {name: num_params for name, num_params in _camera_model_params().values()}
    camera_ids: set[int] = set()
    for where, fields in _text_records(path, CAMERAS_LAYOUT, 4):
        if fields[1] not in models:
            raise ValueError(f"{where}: camera model {fields[1]!r}; expected '{CAMERAS_LAYOUT}' with MODEL one "
                             f"of {', '.join(models)}")
        if len(fields) - 4 != models[fields[1]]:
            raise ValueError(f"{where}: {fields[1]} camera has {len(fields) - 4} parameters; "
                             f"expected {models[fields[1]]}")
        (camera_id,) = _parse_fields(where, CAMERAS_LAYOUT, "CAMERA_ID", fields[:1], int)
        width, height = _parse_fields(where, CAMERAS_LAYOUT, "WIDTH HEIGHT", fields[2:4], int)
        params = _parse_fields(where, CAMERAS_LAYOUT, "PARAMS[]", fields[4:], float)
        _check_camera(where, width, height, params)
        _check_new_id(camera_ids, camera_id, where, "camera")
        camera_ids.add(camera_id)
    return camera_ids


def _check_images_txt(path: Path, camera_ids: set[int], cameras_path: Path) -> dict[int, int]:
    """Check images.txt; return {image id: number of 2D points}.

    Each image takes two lines, as COLMAP reads them: a data line (comments and empty lines
    before it are skipped) and the very next line, its 2D points (possibly empty).
    """
    num_points2D: dict[int, int] = {}
    lines = _text_lines(path)
    for line_number, line in lines:
        if not line or line.startswith("#"):
            continue
        where = f"{path}: line {line_number}"
        fields = line.split()
        if len(fields) < 10:
            raise ValueError(f"{where}: {len(fields)} fields; expected '{IMAGES_LAYOUT}'")
        (image_id,) = _parse_fields(where, IMAGES_LAYOUT, "IMAGE_ID", fields[:1], int)
        pose = _parse_fields(where, IMAGES_LAYOUT, "QW QX QY QZ TX TY TZ", fields[1:8], float)
        (camera_id,) = _parse_fields(where, IMAGES_LAYOUT, "CAMERA_ID", fields[8:9], int)
        where = f"{where} (image {image_id})"
        _check_image(where, pose, camera_id, camera_ids, cameras_path)
        _check_new_id(num_points2D, image_id, where, "image")
        points_line_number, points_line = next(lines, (line_number + 1, ""))
        num_values = len(points_line.split())
        if num_values % 3:
            raise ValueError(f"{path}: line {points_line_number}: {num_values} values for the 2D points of "
                             f"image {image_id}; expected '{POINTS2D_LAYOUT}' triples")
        num_points2D[image_id] = num_values // 3
    return num_points2D


def _check_points_txt(path: Path, num_points2D: dict[int, int], images_path: Path) -> None:
    """Check points3D.txt line by line against the images of images.txt."""
    point_ids: set[int] = set()
    for where, fields in _text_records(path, POINTS3D_LAYOUT, 8):
        if len(fields) % 2:
            raise ValueError(f"{where}: {len(fields) - 8} track values; expected '{POINTS3D_LAYOUT}' pairs")
        (point_id,) = _parse_fields(where, POINTS3D_LAYOUT, "POINT3D_ID", fields[:1], int)
        xyz = _parse_fields(where, POINTS3D_LAYOUT, "X Y Z", fields[1:4], float)
        rgb = _parse_fields(where, POINTS3D_LAYOUT, "R G B", fields[4:7], int)
        if not all(0 <= value <= 255 for value in rgb):
            raise ValueError(f"{where}: colour R G B = {rgb}; expected integers from 0 to 255")
        _parse_fields(where, POINTS3D_LAYOUT, "ERROR", fields[7:8], float)
        track = _parse_fields(where, POINTS3D_LAYOUT, "TRACK[]", fields[8:], int)
        where = f"{where} (point {point_id})"
        _check_point(where, xyz, zip(track[::2], track[1::2]), num_points2D, images_path)
        _check_new_id(point_ids, point_id, where, "point3D")
        point_ids.add(point_id)


def check_text_model(model_dir: Path) -> dict[str, int]:
    """Check the three text files (the layout of COLMAP's reconstruction_io_text.cc) for what
    pycolmap does not check, or reports without naming a file and line; return the counts
    announced in their header comments."""
    paths = {name: model_dir / f"{name}.txt" for name in MODEL_FILES}
    camera_ids = _check_cameras_txt(paths["cameras"])
    num_points2D = _check_images_txt(paths["images"], camera_ids, paths["cameras"])
    _check_points_txt(paths["points3D"], num_points2D, paths["images"])
    announced = {}
    for path in paths.values():
        for _, line in _text_lines(path):
            if not line.startswith("#"):
                break
            match = _HEADER_COUNT.match(line)
            if match:
                announced[match.group(1)] = int(match.group(2))
    return announced
