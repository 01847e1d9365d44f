"""Camera records and camera JSON files (FORMATS.md "Camera JSON"); validation of bad records is in
test_camera_json_validation.py."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from taichi_3dgs.data import CameraRecord, read_cameras_json, write_cameras_json


def _rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _record(image_path: Path, mask_path: Path | None = None, angle: float = 0.3) -> CameraRecord:
    T = np.eye(4)
    T[:3, :3] = _rotation(angle)
    T[:3, 3] = [0.1234567890123, -2.5, 3.0000000001]
    K = np.array([[1111.0111, 0.0, 400.25], [0.0, 1110.5, 399.75], [0.0, 0.0, 1.0]])
    return CameraRecord(image_path=image_path, K=K, T_pointcloud_camera=T, width=800, height=600,
                        camera_id=3, mask_path=mask_path)


def test_written_records_read_back_identical(tmp_path):
    records = [_record(tmp_path / "images" / "a.png", tmp_path / "masks" / "a.png", angle=0.3),
               _record(Path("/elsewhere/b.jpg"), angle=1.1e-7)]
    write_cameras_json(tmp_path / "train.json", records)
    assert read_cameras_json(tmp_path / "train.json") == records


def test_paths_under_the_json_folder_are_written_relative_others_absolute(tmp_path):
    write_cameras_json(tmp_path / "train.json", [_record(tmp_path / "images" / "a.png"),
                                                 _record(Path("/elsewhere/b.jpg"))])
    raw = json.loads((tmp_path / "train.json").read_text())
    assert [item["image_path"] for item in raw] == ["images/a.png", "/elsewhere/b.jpg"]


def test_relative_image_path_resolves_against_the_json_folder(tmp_path, monkeypatch):
    (tmp_path / "data" / "images").mkdir(parents=True)
    (tmp_path / "data" / "images" / "a.png").touch()
    write_cameras_json(tmp_path / "data" / "train.json", [_record(tmp_path / "data" / "images" / "a.png")])
    monkeypatch.chdir(tmp_path)  # the JSON's folder is not the working directory
    (record,) = read_cameras_json("data/train.json")
    assert record.image_path == tmp_path / "data" / "images" / "a.png"


def test_path_found_only_from_the_working_directory_is_used_with_a_warning(tmp_path, monkeypatch):
    # The original project's tools wrote paths relative to the directory they were run from.
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").touch()
    (tmp_path / "out").mkdir()
    item = {"image_path": "images/a.png", "T_pointcloud_camera": np.eye(4).tolist(),
            "camera_intrinsics": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], "camera_width": 640,
            "camera_height": 480, "camera_id": 0}
    (tmp_path / "out" / "train.json").write_text(json.dumps([item, item]))
    monkeypatch.chdir(tmp_path)
    with pytest.warns(UserWarning, match="2 record"):
        records = read_cameras_json(tmp_path / "out" / "train.json")
    assert [r.image_path for r in records] == [tmp_path / "images" / "a.png"] * 2


def test_original_project_records_without_camera_id_or_mask_are_read(tmp_path):
    item = {"image_path": "/x/a.png", "T_pointcloud_camera": np.eye(4).tolist(),
            "camera_intrinsics": [[500.0, 0.0, 320.0], [0.0, 500.0, 240.0], [0.0, 0.0, 1.0]],
            "camera_width": 640.0, "camera_height": 480}
    (tmp_path / "train.json").write_text(json.dumps([item]))
    (record,) = read_cameras_json(tmp_path / "train.json")
    assert (record.width, record.height, record.camera_id, record.mask_path) == (640, 480, 0, None)


def test_viewmat_is_the_inverse_of_camera_to_world():
    record = _record(Path("/x.png"))
    point_world = np.array([0.5, -1.0, 7.0, 1.0])
    point_camera = record.viewmat @ point_world
    assert np.allclose(record.T_pointcloud_camera @ point_camera, point_world, atol=1e-12)
    assert np.allclose(point_camera[:3], _rotation(0.3).T @ (point_world[:3] - record.T_pointcloud_camera[:3, 3]))


def test_scaled_camera_projects_to_proportionally_scaled_pixels():
    record = _record(Path("/x.png"))
    half = record.scaled(400, 150)
    point = np.array([0.2, -0.1, 1.0])
    pixel, half_pixel = record.K @ point, half.K @ point
    assert (half.width, half.height) == (400, 150)
    assert np.allclose(half_pixel[:2], pixel[:2] * [0.5, 0.25])


def test_record_arrays_are_read_only():
    record = _record(Path("/x.png"))
    with pytest.raises(ValueError):
        record.K[0, 0] = 1.0


def test_write_leaves_no_temporary_file(tmp_path):
    write_cameras_json(tmp_path / "val.json", [])
    assert os.listdir(tmp_path) == ["val.json"]
    assert read_cameras_json(tmp_path / "val.json") == []
