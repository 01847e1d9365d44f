"""tools/prepare_colmap.py on real COLMAP models corrupted by the test: each broken file is named
with the line (text) or record (binary) and what was expected, where pycolmap alone says "Rig with
ID 999 does not exist", "Image with ID 14 does not exist", fails a stream check or reads a NaN
without a word. Text: colmap_table_txt; binary: colmap_desk; both copied to tmp_path."""
from __future__ import annotations

import math
import os
import re
import shutil
import struct
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conftest import REPO_ROOT, dataset_path
from tool_runner import run_tool


def _copy_model(tmp_path, scene):
    model = tmp_path / "model"
    shutil.copytree(dataset_path(scene) / "sparse" / "0", model)
    return model


def _prepare(tmp_path, model, images, capsys=None):
    """Run the tool as a user would (a subprocess; in-process `main` when `capsys` is given, to
    keep the variants fast); return its stderr after checking exit 1, an error line, no
    traceback, and that nothing but the inputs is in tmp_path (the output folder stays absent)."""
    inputs = sorted(os.listdir(tmp_path))
    argv = ["--base_path", str(model), "--image_path", str(images), "--output_dir", str(tmp_path / "out")]
    if capsys is None:
        result = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "prepare_colmap.py"), *argv],
                                capture_output=True, text=True, timeout=120)
        code, stderr = result.returncode, result.stderr
    else:
        code, stderr = run_tool("prepare_colmap", *argv), capsys.readouterr().err
    assert code == 1
    assert "Traceback" not in stderr
    assert "prepare_colmap.py: error: " in stderr
    assert sorted(os.listdir(tmp_path)) == inputs
    return stderr


def _data_lines(path):
    """[(line number, fields)] of the data lines of a COLMAP text file (not comments)."""
    lines = path.read_text().splitlines()
    return [(number, line.split()) for number, line in enumerate(lines, start=1) if line and not line.startswith("#")]


def _set_fields(path, line_number, fields):
    lines = path.read_text().splitlines(keepends=True)
    lines[line_number - 1] = " ".join(fields) + "\n"
    path.write_text("".join(lines))


# --- text model (colmap_table_txt: 14 SIMPLE_RADIAL cameras, 14 images, 3,036 points) ---

def test_image_whose_camera_id_cameras_txt_lacks_names_the_line(tmp_path):
    model = _copy_model(tmp_path, "colmap_table_txt")
    number, fields = _data_lines(model / "images.txt")[0]  # first image line (its 2D points follow)
    _set_fields(model / "images.txt", number, fields[:8] + ["999"] + fields[9:])
    stderr = _prepare(tmp_path, model, dataset_path("colmap_table_txt") / "images")
    assert (f"{model / 'images.txt'}: line {number} (image {fields[0]}): refers to camera id 999, which "
            f"{model / 'cameras.txt'} does not define; expected one of its camera ids (1, 2, 3") in stderr


@pytest.mark.parametrize("token", ["nan", "inf", "-inf"])
def test_non_finite_point_coordinate_in_points3d_txt_names_the_line(tmp_path, capsys, token):
    model = _copy_model(tmp_path, "colmap_table_txt")
    number, fields = _data_lines(model / "points3D.txt")[10]
    _set_fields(model / "points3D.txt", number, fields[:2] + [token] + fields[3:])  # the Y coordinate
    stderr = _prepare(tmp_path, model, dataset_path("colmap_table_txt") / "images", capsys if token != "nan" else None)
    assert (f"{model / 'points3D.txt'}: line {number} (point {fields[0]}): Y = {float(token)} is not a finite "
            "coordinate; expected finite X, Y, Z") in stderr


def test_track_referring_to_an_image_images_txt_lacks_names_the_line(tmp_path):
    model = _copy_model(tmp_path, "colmap_table_txt")
    images = _data_lines(model / "images.txt")
    lines = (model / "images.txt").read_text().splitlines(keepends=True)
    image_line = next(number for number, fields in images if fields[0] == "14")
    del lines[image_line - 1:image_line + 1]  # image 14 and its 2D points line
    (model / "images.txt").write_text("".join(lines))
    # The first point whose track (IMAGE_ID, POINT2D_IDX pairs after 8 fields) observes image 14.
    number, fields = next((number, fields) for number, fields in _data_lines(model / "points3D.txt")
                          if "14" in fields[8::2])
    stderr = _prepare(tmp_path, model, dataset_path("colmap_table_txt") / "images")
    assert (f"{model / 'points3D.txt'}: line {number} (point {fields[0]}): its track refers to image id 14, which "
            f"{model / 'images.txt'} does not define") in stderr


def test_track_referring_to_a_2d_point_the_image_lacks_names_the_line(tmp_path, capsys):
    model = _copy_model(tmp_path, "colmap_table_txt")
    number, fields = _data_lines(model / "points3D.txt")[0]
    image_id = fields[8]
    image_line = next(n for n, f in _data_lines(model / "images.txt") if f[0] == image_id)
    num_points2D = len((model / "images.txt").read_text().splitlines()[image_line].split()) // 3
    _set_fields(model / "points3D.txt", number, fields[:9] + [str(num_points2D)] + fields[10:])
    stderr = _prepare(tmp_path, model, dataset_path("colmap_table_txt") / "images", capsys)
    assert (f"points3D.txt: line {number} (point {fields[0]}): its track refers to 2D point {num_points2D} of image "
            f"{image_id}, which has {num_points2D} 2D points in {model / 'images.txt'}; expected an index below "
            f"{num_points2D}") in stderr


@pytest.mark.parametrize("file, row, field, value, message", [
    ("images.txt", 0, 5, "abc", "TX is 'abc'; expected a number in 'IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME'"),
    ("images.txt", 0, 1, "0 0 0 0", "quaternion QW QX QY QZ is all zeros; expected a rotation"),
    ("points3D.txt", 0, 4, "300", "colour R G B = [300, "),
    ("cameras.txt", 0, 2, "0", "image size 0x1024; expected a positive WIDTH and HEIGHT"),
    ("cameras.txt", 1, 0, "1", "camera id 1 is defined twice; expected each camera id once"),
])
def test_malformed_field_names_the_file_line_and_field(tmp_path, capsys, file, row, field, value, message):
    model = _copy_model(tmp_path, "colmap_table_txt")
    number, fields = _data_lines(model / file)[row]
    _set_fields(model / file, number, fields[:field] + value.split() + fields[field + len(value.split()):])
    stderr = _prepare(tmp_path, model, dataset_path("colmap_table_txt") / "images", capsys)
    assert f"{model / file}: line {number}" in stderr and message in stderr


# --- binary model (colmap_desk: 1 PINHOLE camera, 29 images, 7,562 points) ---
# Offsets from COLMAP's binary layout: images.bin = uint64 count, then per image uint32 image_id,
# 4 + 3 float64 (qvec, tvec), uint32 camera_id, ...; points3D.bin = uint64 count, then per point
# uint64 point3D_id, 3 float64 xyz, 3 uint8 rgb, float64 error, uint64 track length, then
# (uint32 image_id, uint32 point2D_idx) pairs.
FIRST_IMAGE_CAMERA_ID = 8 + 4 + 7 * 8
FIRST_POINT_Y = 8 + 8 + 8
FIRST_POINT_TRACK = 8 + 8 + 24 + 3 + 8 + 8


def _patch(path, offset, fmt, value):
    data = bytearray(path.read_bytes())
    struct.pack_into("<" + fmt, data, offset, value)
    path.write_bytes(bytes(data))


def _first_point(model):
    data = (model / "points3D.bin").read_bytes()
    point_id, = struct.unpack_from("<Q", data, 8)
    image_id, point2D_idx = struct.unpack_from("<II", data, FIRST_POINT_TRACK)
    return point_id, image_id, point2D_idx


def test_binary_image_whose_camera_id_cameras_bin_lacks_names_the_record(tmp_path):
    model = _copy_model(tmp_path, "colmap_desk")
    _patch(model / "images.bin", FIRST_IMAGE_CAMERA_ID, "I", 999)
    image_id, = struct.unpack_from("<I", (model / "images.bin").read_bytes(), 8)
    stderr = _prepare(tmp_path, model, dataset_path("colmap_desk") / "images")
    assert (f"{model / 'images.bin'}: image record 0 (image_id {image_id}): refers to camera id 999, which "
            f"{model / 'cameras.bin'} does not define; expected one of its camera ids (1)") in stderr


def test_binary_nan_coordinate_names_the_record(tmp_path):
    # pycolmap reads this model without an error and keeps the NaN.
    model = _copy_model(tmp_path, "colmap_desk")
    _patch(model / "points3D.bin", FIRST_POINT_Y, "d", math.nan)
    point_id, _, _ = _first_point(model)
    stderr = _prepare(tmp_path, model, dataset_path("colmap_desk") / "images")
    assert (f"{model / 'points3D.bin'}: point record 0 (point3D_id {point_id}): Y = nan is not a finite "
            "coordinate; expected finite X, Y, Z") in stderr


@pytest.mark.parametrize("field", ["image_id", "point2D_idx"])
def test_binary_track_element_that_does_not_exist_names_the_record(tmp_path, capsys, field):
    model = _copy_model(tmp_path, "colmap_desk")
    point_id, image_id, _ = _first_point(model)
    offset = FIRST_POINT_TRACK + (0 if field == "image_id" else 4)
    _patch(model / "points3D.bin", offset, "I", 99_999)
    stderr = _prepare(tmp_path, model, dataset_path("colmap_desk") / "images", None if field == "image_id" else capsys)
    where = f"{model / 'points3D.bin'}: point record 0 (point3D_id {point_id}): its track refers to"
    if field == "image_id":
        assert f"{where} image id 99999, which {model / 'images.bin'} does not define" in stderr
    else:
        assert re.search(rf"{re.escape(where)} 2D point 99999 of image {image_id}, which has \d+ 2D points", stderr)


# --- an image against its camera: the aspect check the converters share with the trainer's loader ---

def test_image_of_another_aspect_than_its_pinhole_camera_is_refused(tmp_path):
    source = dataset_path("colmap_desk") / "images"
    (tmp_path / "images").mkdir()
    names = sorted(os.listdir(source))
    for name in names[1:]:
        os.symlink(source / name, tmp_path / "images" / name)
    Image.fromarray(np.zeros((1070, 1070, 3), np.uint8)).save(tmp_path / "images" / names[0], format="JPEG")
    stderr = _prepare(tmp_path, dataset_path("colmap_desk") / "sparse" / "0", tmp_path / "images")
    assert (f"{tmp_path / 'images' / names[0]}: image is 1070x1070 pixels but its camera is 1906x1070; expected "
            "the same aspect ratio") in stderr
