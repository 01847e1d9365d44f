"""tools/prepare_colmap.py and taichi_3dgs.data.colmap on the real COLMAP scenes.

The main check projects every COLMAP 3D point with the written JSON cameras and compares it with
its 2D observations in the model: it tests the pose inversion, the axes, K and the pixel
convention at once.
"""
from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import sys

import numpy as np
import pycolmap
import pytest
import yaml
from PIL import Image

from conftest import REPO_ROOT, dataset_path
from distortion_reference import undistortion_error
from taichi_3dgs.data import read_cameras_json, read_point_cloud
from taichi_3dgs.data.colmap import convert_colmap
from taichi_3dgs.data.converter_options import BEYOND_CLOUD_POINTS
from tool_runner import run_tool

# scene: (registered images, 3D points, validation images = ceil(images / 8))
SCENES = {"colmap_desk": (29, 7562, 4), "colmap_tumbler": (77, 9262, 10), "colmap_table_txt": (14, 3036, 2)}
PINHOLE = ("SIMPLE_PINHOLE", "PINHOLE")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    """prepared(scene) -> output folder of convert_colmap on the dataset root (converted once)."""
    cache = {}

    def get(scene):
        if scene not in cache:
            cache[scene] = tmp_path_factory.mktemp(scene) / "prepared"
            convert_colmap(dataset_path(scene), cache[scene])
        return cache[scene]
    return get


def _records_by_name(folder):
    records = read_cameras_json(folder / "train.json") + read_cameras_json(folder / "val.json")
    return {record.image_path.name: record for record in records}


def _project(record, points):
    camera = points @ record.viewmat[:3, :3].T + record.viewmat[:3, 3]
    return (camera / camera[:, 2:]) @ record.K[:2].T


def _observations(reconstruction, image, record):
    """(observed pixels in the written image [M, 2], their 3D points [M, 3])."""
    observed = [point for point in image.points2D if point.has_point3D()]
    pixels = np.array([point.xy for point in observed])
    points = np.array([reconstruction.points3D[point.point3D_id].xyz for point in observed])
    if image.camera.model.name not in PINHOLE:
        # The observations are in the distorted image: follow their rays into the undistorted one.
        pixels = image.camera.cam_from_img(pixels) @ record.K[:2, :2].T + record.K[:2, 2]
    return pixels, points


@pytest.mark.parametrize("scene", SCENES)
def test_every_3d_point_reprojects_onto_its_observations(prepared, scene):
    reconstruction = pycolmap.Reconstruction(dataset_path(scene) / "sparse" / "0")
    records = _records_by_name(prepared(scene))
    errors = []
    for image in reconstruction.images.values():
        pixels, points = _observations(reconstruction, image, records[image.name])
        errors.append(np.linalg.norm(_project(records[image.name], points) - pixels, axis=1))
    errors = np.concatenate(errors)
    assert len(errors) == reconstruction.compute_num_observations()
    assert np.median(errors) < 1.0


@pytest.mark.parametrize("scene, tolerance_px", [("colmap_desk", 1e-6), ("colmap_tumbler", 1e-6),
                                                 ("colmap_table_txt", 1e-2)])
def test_written_cameras_project_points_where_colmap_does(prepared, scene, tolerance_px):
    reconstruction = pycolmap.Reconstruction(dataset_path(scene) / "sparse" / "0")
    records = _records_by_name(prepared(scene))
    points = np.array([point.xyz for point in reconstruction.points3D.values()])
    for image in reconstruction.images.values():
        record, camera = records[image.name], image.camera
        in_camera = points @ image.cam_from_world().rotation.matrix().T + image.cam_from_world().translation
        visible = in_camera[:, 2] > 0.1
        expected = camera.img_from_cam(in_camera[visible])
        if camera.model.name not in PINHOLE:
            expected = camera.cam_from_img(expected) @ record.K[:2, :2].T + record.K[:2, 2]
        ours = _project(record, points[visible])
        inside = (ours[:, 0] > 0) & (ours[:, 0] < record.width) & (ours[:, 1] > 0) & (ours[:, 1] < record.height)
        assert np.abs(ours[inside] - expected[inside]).max() < tolerance_px, image.name


@pytest.mark.parametrize("scene", SCENES)
def test_counts_of_cameras_points_and_validation_images_are_exact(prepared, scene):
    num_images, num_points, num_val = SCENES[scene]
    folder = prepared(scene)
    train, val = read_cameras_json(folder / "train.json"), read_cameras_json(folder / "val.json")
    assert (len(train) + len(val), len(val)) == (num_images, num_val)
    assert len(read_point_cloud(folder / "point_cloud.parquet")) == num_points


def test_every_eighth_image_sorted_by_name_is_validation(prepared):
    # Unpadded names (1.jpg ... 80.jpg): the name order is not the numeric order.
    names = sorted(os.listdir(dataset_path("colmap_tumbler") / "images"))
    val = read_cameras_json(prepared("colmap_tumbler") / "val.json")
    assert [record.image_path.name for record in val] == names[::8]
    assert names[:3] == ["1.jpg", "10.jpg", "11.jpg"]


def test_point_cloud_holds_every_colmap_point_with_its_colour(prepared):
    reconstruction = pycolmap.Reconstruction(dataset_path("colmap_desk") / "sparse" / "0")
    ids = sorted(reconstruction.points3D)
    cloud = read_point_cloud(prepared("colmap_desk") / "point_cloud.parquet")
    assert np.array_equal(cloud.xyz, np.array([reconstruction.points3D[i].xyz for i in ids], dtype=np.float32))
    assert np.array_equal(cloud.rgb, np.array([reconstruction.points3D[i].color for i in ids]))


def test_pinhole_images_are_referenced_in_place(prepared):
    folder = prepared("colmap_desk")
    records = read_cameras_json(folder / "train.json")
    assert all(record.image_path.parent == dataset_path("colmap_desk") / "images" for record in records)
    assert not (folder / "images").exists()


def test_distorted_images_are_written_undistorted_at_their_record_size(prepared):
    folder = prepared("colmap_table_txt")
    records = read_cameras_json(folder / "train.json") + read_cameras_json(folder / "val.json")
    for record in records:
        assert record.image_path.parent == folder / "images"
        with Image.open(record.image_path) as image:
            assert image.size == (record.width, record.height)
    assert len(os.listdir(folder / "images")) == 14


def test_undistorted_image_matches_the_simple_radial_model(prepared):
    reconstruction = pycolmap.Reconstruction(dataset_path("colmap_table_txt") / "sparse" / "0")
    record = read_cameras_json(prepared("colmap_table_txt") / "train.json")[0]
    image = reconstruction.find_image_with_name(record.image_path.name)
    f, cx, cy, k = image.camera.params
    error = undistortion_error(dataset_path("colmap_table_txt") / "images" / image.name, record.image_path,
                               record.K, f, f, cx, cy, k)
    # Mean |difference| in 0..255 units; a half-pixel shift of K gives about 1.1 on this image.
    assert error < 0.8


def test_config_names_exactly_the_written_files(prepared):
    folder = prepared("colmap_desk")
    config = yaml.safe_load((folder / "train_config.yaml").read_text())
    assert config == {"train-dataset-json-path": "train.json", "val-dataset-json-path": "val.json",
                      "pointcloud-parquet-path": "point_cloud.parquet", "summary-writer-log-dir": "logs",
                      "output-model-dir": "output", "image-downscale-factor": 1, "scale-schedule": True,
                      "initial-points": {"beyond-cloud": BEYOND_CLOUD_POINTS}}
    assert all((folder / config[key]).is_file() for key in
               ("train-dataset-json-path", "val-dataset-json-path", "pointcloud-parquet-path"))


def test_downscaled_image_folder_gets_intrinsics_scaled_to_it(prepared, tmp_path):
    root = dataset_path("colmap_tumbler")
    convert_colmap(root / "sparse" / "0", tmp_path, image_path=root / "images_4")
    full = _records_by_name(prepared("colmap_tumbler"))
    for record in read_cameras_json(tmp_path / "train.json"):
        assert (record.width, record.height) == (200, 150)
        assert np.allclose(record.K, np.diag([0.25, 0.25, 1.0]) @ full[record.image_path.name].K)


def test_model_folder_with_image_path_gives_the_same_json_as_the_dataset_root(prepared, tmp_path):
    root = dataset_path("colmap_desk")
    convert_colmap(root / "sparse" / "0", tmp_path, image_path=root / "images")
    assert (tmp_path / "train.json").read_text() == (prepared("colmap_desk") / "train.json").read_text()


def test_the_sparse_folder_holding_0_gives_the_same_json_as_the_dataset_root(prepared, tmp_path):
    # graphdeco's layout X/images + X/sparse/0: --base_path X/sparse takes its images from X/images
    assert run_tool("prepare_colmap", "--base_path", dataset_path("colmap_desk") / "sparse",
                    "--output_dir", tmp_path) == 0
    assert (tmp_path / "train.json").read_text() == (prepared("colmap_desk") / "train.json").read_text()


def test_image_list_file_selects_the_validation_images(tmp_path):
    (tmp_path / "test_images.txt").write_text("input_0003.jpg\n\ninput_0010.jpg\n")
    convert_colmap(dataset_path("colmap_desk"), tmp_path / "out", test_image_list_path=tmp_path / "test_images.txt")
    val = read_cameras_json(tmp_path / "out" / "val.json")
    assert [record.image_path.name for record in val] == ["input_0003.jpg", "input_0010.jpg"]
    assert len(read_cameras_json(tmp_path / "out" / "train.json")) == 27


def test_no_val_puts_every_image_in_training(tmp_path):
    assert run_tool("prepare_colmap", "--base_path", dataset_path("colmap_desk"), "--output_dir", tmp_path / "out",
                    "--no_val") == 0
    assert len(read_cameras_json(tmp_path / "out" / "train.json")) == 29
    assert read_cameras_json(tmp_path / "out" / "val.json") == []


def test_tool_runs_from_another_working_directory(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "prepare_colmap.py"), "--base_path",
                             str(dataset_path("colmap_desk")), "--output_dir", "out", "--val_every", "10"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert len(read_cameras_json(tmp_path / "out" / "val.json")) == 3


def _copy_model(tmp_path, scene="colmap_desk"):
    model = tmp_path / "model"
    shutil.copytree(dataset_path(scene) / "sparse" / "0", model)
    return model


def _truncate_images_bin(model):
    data = (model / "images.bin").read_bytes()
    (model / "images.bin").write_bytes(data[:len(data) // 2])


def _truncate_cameras_bin(model):
    # pycolmap itself reads this one without an error (garbage camera parameters).
    data = (model / "cameras.bin").read_bytes()
    (model / "cameras.bin").write_bytes(data[:-8])


def _unknown_camera_model_id(model):
    data = bytearray((model / "cameras.bin").read_bytes())
    data[12:16] = struct.pack("<i", 99)  # after the uint64 count and the int32 camera_id
    (model / "cameras.bin").write_bytes(bytes(data))


@pytest.mark.parametrize("corrupt, message", [
    (_truncate_images_bin, r"images.bin: truncated: .* expected a complete COLMAP binary file"),
    (_truncate_cameras_bin, r"cameras.bin: truncated: the 4 parameters of PINHOLE camera record 0 needs 32 bytes"),
    (_unknown_camera_model_id, r"cameras.bin: camera record 0 \(camera_id 1\) has camera model id 99; expected one of"),
])
def test_corrupt_binary_model_fails_with_exit_1_and_writes_nothing(tmp_path, capsys, corrupt, message):
    model = _copy_model(tmp_path)
    corrupt(model)
    code = run_tool("prepare_colmap", "--base_path", model, "--image_path", dataset_path("colmap_desk") / "images",
                    "--output_dir", tmp_path / "out")
    assert code == 1
    assert re.search(message, capsys.readouterr().err)
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_unknown_camera_model_name_in_text_model_names_the_line(tmp_path, capsys):
    model = _copy_model(tmp_path, "colmap_table_txt")
    text = (model / "cameras.txt").read_text()
    (model / "cameras.txt").write_text(text.replace("SIMPLE_RADIAL", "MY_LENS", 1))
    code = run_tool("prepare_colmap", "--base_path", model, "--image_path",
                    dataset_path("colmap_table_txt") / "images", "--output_dir", tmp_path / "out")
    assert code == 1
    assert "cameras.txt: line 4: camera model 'MY_LENS'" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_text_model_shorter_than_its_header_count_is_rejected(tmp_path, capsys):
    model = _copy_model(tmp_path, "colmap_table_txt")
    lines = (model / "points3D.txt").read_text().splitlines(keepends=True)
    (model / "points3D.txt").write_text("".join(lines[:-100]))  # cut at a line boundary: still parseable
    code = run_tool("prepare_colmap", "--base_path", model, "--image_path",
                    dataset_path("colmap_table_txt") / "images", "--output_dir", tmp_path / "out")
    assert code == 1
    assert "points3D.txt: pycolmap read 2936 points but the file announces 3036" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["model"]


def test_missing_images_folder_fails_with_exit_1_and_writes_nothing(tmp_path, capsys):
    code = run_tool("prepare_colmap", "--base_path", dataset_path("colmap_desk") / "sparse" / "0",
                    "--image_path", tmp_path / "no_images", "--output_dir", tmp_path / "out")
    assert code == 1
    assert f"{tmp_path / 'no_images'}: images folder does not exist" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def test_failure_leaves_an_existing_output_folder_untouched(tmp_path):
    model = _copy_model(tmp_path)
    _truncate_images_bin(model)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    code = run_tool("prepare_colmap", "--base_path", model, "--image_path", dataset_path("colmap_desk") / "images",
                    "--output_dir", tmp_path / "out")
    assert code == 1
    assert os.listdir(tmp_path / "out") == ["notes.txt"]


def test_unreadable_image_during_undistortion_leaves_nothing_behind(tmp_path, capsys):
    root = dataset_path("colmap_table_txt")
    shutil.copytree(root / "images", tmp_path / "images")
    (tmp_path / "images" / "9table.jpeg").write_bytes(b"not a jpeg")  # last by name: others are staged first
    code = run_tool("prepare_colmap", "--base_path", root / "sparse" / "0", "--image_path", tmp_path / "images",
                    "--output_dir", tmp_path / "out")
    assert code == 1
    assert "9table.jpeg: not a readable image" in capsys.readouterr().err
    assert sorted(os.listdir(tmp_path)) == ["images"]
