"""COLMAP sparse model -> prepared dataset (train.json, val.json, point_cloud.parquet, config).

The model (.bin or .txt) is read with pycolmap. COLMAP's camera frame is already OpenCV's (x right,
y down, z forward) and its pixel convention is ours (origin at the image corner, centres at +0.5),
so a pinhole camera maps directly: K = calibration matrix, T_pointcloud_camera =
inverse(cam_from_world). Distorted models are undistorted (taichi_3dgs.data.undistortion).

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
import os
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Container, Iterable, Iterator, Sequence

import numpy as np
import pycolmap
from tqdm import tqdm

from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.data.converter_options import DEFAULT_VAL_EVERY, read_image_list, split_validation
from taichi_3dgs.data.point_cloud import PointCloud
from taichi_3dgs.data.prepared_dataset import (IMAGES_DIR, PreparedDataset, staged_output,
                                               write_prepared_dataset)
from taichi_3dgs.data.undistortion import camera_record_for_image, check_undistortable, is_pinhole

MODEL_FILES = ("cameras", "images", "points3D")
# The line layouts of the text model files (COLMAP src/colmap/scene/reconstruction_io_text.cc).
CAMERAS_LAYOUT = "CAMERA_ID MODEL WIDTH HEIGHT PARAMS[]"
IMAGES_LAYOUT = "IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME"
POINTS2D_LAYOUT = "POINTS2D[] as (X, Y, POINT3D_ID)"
POINTS3D_LAYOUT = "POINT3D_ID X Y Z R G B ERROR TRACK[] as (IMAGE_ID, POINT2D_IDX)"
_HEADER_COUNT = re.compile(r"#\s*Number of (cameras|images|points)\s*:\s*(\d+)")


@dataclass(frozen=True)
class ColmapLayout:
    """Where a COLMAP dataset's sparse model and images are.

    Attributes:
        model_dir: folder holding cameras/images/points3D (.bin or .txt).
        image_dir: folder the image names of the model are relative to.
    """

    model_dir: Path
    image_dir: Path


def _has_model(folder: Path) -> bool:
    return any((folder / f"cameras{ext}").is_file() for ext in (".bin", ".txt"))


def locate_colmap_dataset(base_path: str | os.PathLike, image_path: str | os.PathLike | None = None) -> ColmapLayout:
    """Find the sparse model and the images from the tool's arguments.

    `base_path` is either the model folder itself (then `image_path` is required, as in the
    original project), a dataset root holding `sparse/0/` (or `sparse/`) and `images/`
    (graphdeco's `convert.py` layout), or that root's `sparse/` folder holding `0/` (the images are
    then `../images`); `image_path` overrides the images folder.

    Raises:
        FileNotFoundError: base_path does not exist, holds no model, or the images folder is missing.
        ValueError: base_path is a model folder and image_path is not given.
    """
    base = Path(base_path)
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: folder does not exist; expected a COLMAP sparse model folder "
                                "or a dataset root holding images/ and sparse/0/")
    # (model folder, the dataset root whose images/ go with it)
    candidates = ((base, None), (base / "sparse" / "0", base), (base / "sparse", base), (base / "0", base.parent))
    for model_dir, root in candidates:
        if _has_model(model_dir):
            break
    else:
        raise FileNotFoundError(f"{base}: no COLMAP model found; expected cameras.bin or cameras.txt in it, "
                                "in sparse/0/, in sparse/ or in 0/")
    if image_path is None:
        if root is None:
            raise ValueError(f"{base} is a sparse model folder: pass --image_path (the images folder), "
                             "or pass the dataset root holding images/ and sparse/0/ as --base_path")
        image_dir = root / "images"
    else:
        image_dir = Path(image_path)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: images folder does not exist; expected the folder the image "
                                f"names of the COLMAP model {model_dir} are relative to")
    return ColmapLayout(model_dir=model_dir, image_dir=image_dir)


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


def _check_binary_model(model_dir: Path) -> dict[str, int]:
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


def _check_text_model(model_dir: Path) -> dict[str, int]:
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


def read_colmap_model(model_dir: str | os.PathLike) -> pycolmap.Reconstruction:
    """Read and check a COLMAP sparse model (all .bin or all .txt) with pycolmap.

    Raises:
        FileNotFoundError: neither all three .bin nor all three .txt files exist.
        ValueError: a truncated or malformed file, an unknown camera model (id or name), a
            non-finite number, an image whose camera id is not in cameras, a 3D point whose track
            names an image or 2D point that does not exist, a repeated id, a camera model that
            cannot be undistorted, or a text file with fewer entries than its header announces;
            the message names the file and, where there is one, the record or line.
    """
    model_dir = Path(model_dir)
    for ext in (".bin", ".txt"):
        if all((model_dir / f"{name}{ext}").is_file() for name in MODEL_FILES):
            break
    else:
        raise FileNotFoundError(f"{model_dir}: expected {', '.join(n + '.bin' for n in MODEL_FILES)} or "
                                f"{', '.join(n + '.txt' for n in MODEL_FILES)}")
    announced = _check_binary_model(model_dir) if ext == ".bin" else _check_text_model(model_dir)
    reconstruction = pycolmap.Reconstruction()
    try:
        (reconstruction.read_binary if ext == ".bin" else reconstruction.read_text)(str(model_dir))
    except (ValueError, IndexError, RuntimeError, MemoryError) as error:
        raise ValueError(f"{model_dir}: pycolmap cannot read the COLMAP {ext} model "
                         f"({' '.join(str(error).split())}); expected a consistent model") from None
    loaded = {"cameras": reconstruction.num_cameras(), "images": reconstruction.num_images(),
              "points": reconstruction.num_points3D()}
    for kind, count in announced.items():
        if loaded[kind] != count:
            file_name = "points3D" if kind == "points" else kind
            raise ValueError(f"{model_dir / (file_name + ext)}: pycolmap read {loaded[kind]} {kind} but the "
                             f"file announces {count}; the file looks truncated")
    for camera_id, camera in reconstruction.cameras.items():
        check_undistortable(camera, f"{model_dir}: camera {camera_id}")
    return reconstruction


def _point_cloud(reconstruction: pycolmap.Reconstruction) -> PointCloud:
    ids = sorted(reconstruction.points3D)
    xyz = np.array([reconstruction.points3D[i].xyz for i in ids], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([reconstruction.points3D[i].color for i in ids], dtype=np.uint8).reshape(-1, 3)
    return PointCloud(xyz=xyz, rgb=rgb)


def _camera_to_world(image: pycolmap.Image) -> np.ndarray:
    T_pointcloud_camera = np.eye(4)
    T_pointcloud_camera[:3] = image.cam_from_world().inverse().matrix()
    return T_pointcloud_camera


def convert_colmap(base_path: str | os.PathLike, output_dir: str | os.PathLike, *,
                   image_path: str | os.PathLike | None = None,
                   test_image_list_path: str | os.PathLike | None = None,
                   val_every: int | None = DEFAULT_VAL_EVERY,
                   image_downscale_factor: int = 1) -> PreparedDataset:
    """Convert a COLMAP dataset into a prepared folder (see taichi_3dgs.data.prepared_dataset).

    Images are sorted by name; validation images are those named in `test_image_list_path`, else
    every `val_every`-th (index % val_every == 0), none when val_every is None or 0. Pinhole
    images are referenced in place; distorted ones are undistorted into `<output_dir>/images`.
    The point cloud holds every points3D entry (x, y, z, r, g, b), sorted by point id.

    Args:
        base_path: sparse model folder, or dataset root (see `locate_colmap_dataset`).
        output_dir: folder to write; created if needed.
        image_path: images folder (required when base_path is the model folder).
        test_image_list_path: text file of validation image names, one per line.
        val_every: validation stride when no list is given.
        image_downscale_factor: written to the training config.

    Raises:
        FileNotFoundError, ValueError: bad or missing input (nothing is written then).
        OSError: the output cannot be written (nothing is left behind).
    """
    layout = locate_colmap_dataset(base_path, image_path)
    reconstruction = read_colmap_model(layout.model_dir)
    images = sorted((image for image in reconstruction.images.values() if image.has_pose), key=lambda im: im.name)
    if not images:
        raise ValueError(f"{layout.model_dir}: the model has no registered image")
    missing = [image.name for image in images if not (layout.image_dir / image.name).is_file()]
    if missing:
        raise FileNotFoundError(f"{layout.image_dir}: {len(missing)} of the {len(images)} images of the model "
                                f"are missing, e.g. {missing[:3]}; expected every image the model names")
    val_names = read_image_list(test_image_list_path) if test_image_list_path is not None else None
    is_val = split_validation([image.name for image in images], val_every, val_names, str(test_image_list_path))
    if all(is_val):
        raise ValueError(f"{layout.model_dir}: every image went to validation; expected at least one training image")

    distorted = [reconstruction.cameras[image.camera_id].model.name for image in images
                 if not is_pinhole(reconstruction.cameras[image.camera_id])]
    cloud = _point_cloud(reconstruction)
    with staged_output(output_dir) as stage:
        records: list[CameraRecord] = []
        for image in tqdm(images, desc="cameras", unit="image", disable=None):
            camera = reconstruction.cameras[image.camera_id]
            records.append(camera_record_for_image(layout.image_dir / image.name, camera, _camera_to_world(image),
                                                   stage / IMAGES_DIR / image.name, camera_id=image.camera_id))
        train = [record for record, val in zip(records, is_val) if not val]
        val = [record for record, val in zip(records, is_val) if val]
        write_prepared_dataset(stage, train, val, cloud, image_downscale_factor=image_downscale_factor)

    output = Path(output_dir)
    messages = [f"COLMAP model {layout.model_dir}: {len(images)} images, {len(cloud)} points"]
    if distorted:
        messages.append(f"undistorted {len(distorted)} images ({', '.join(sorted(set(distorted)))} cameras) into "
                        f"{output / IMAGES_DIR}")
    return PreparedDataset(output_dir=output, num_train=len(train), num_val=len(val), num_points=len(cloud),
                           messages=messages)
