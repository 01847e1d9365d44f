"""tools/prepare_InstantNGP_with_mesh.py and taichi_3dgs.data.instant_ngp on the real fox scene."""
from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import dataset_path
from distortion_reference import undistortion_error
from taichi_3dgs.data import read_cameras_json, read_point_cloud
from taichi_3dgs.data.converter_options import BEYOND_CLOUD_POINTS
from taichi_3dgs.data.initial_points import sample_view_volume
from taichi_3dgs.data.instant_ngp import convert_instant_ngp
from taichi_3dgs.training.config import load_train_config
from tool_runner import run_tool

MESH_POINTS = 2000


@pytest.fixture(scope="module")
def fox(tmp_path_factory):
    """(output folder, result, warnings) of converting ngp_fox with the armadillo as mesh."""
    output = tmp_path_factory.mktemp("fox") / "prepared"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = convert_instant_ngp(dataset_path("ngp_fox") / "transforms.json", output,
                                     mesh_path=dataset_path("mesh_stanford") / "armadillo.obj",
                                     mesh_sample_points=MESH_POINTS)
    return output, result, [str(w.message) for w in caught]


def _records(folder):
    return read_cameras_json(folder / "train.json") + read_cameras_json(folder / "val.json")


def test_the_50_existing_frames_become_records(fox):
    folder, _, _ = fox
    train, val = read_cameras_json(folder / "train.json"), read_cameras_json(folder / "val.json")
    assert (len(train), len(val)) == (43, 7)  # every 8th of the 50 existing frames is validation
    assert len({record.image_path.name for record in train + val}) == 50


def test_the_17_missing_frames_are_skipped_with_one_warning(fox):
    _, _, messages = fox
    skipped = [message for message in messages if "skipped" in message]
    assert skipped == ["skipped 17 frame(s) whose image file does not exist "
                       "(e.g. images/0005.jpg, images/0016.jpg, images/0017.jpg)"]


def test_mesh_sample_has_the_requested_count_on_the_mesh(fox):
    folder, result, _ = fox
    cloud = read_point_cloud(folder / "point_cloud.parquet")
    assert len(cloud) == MESH_POINTS and cloud.rgb is None
    # Armadillo bounding box from mesh_stanford/PROVENANCE.md.
    assert np.all(np.abs(cloud.xyz) <= np.array([0.6828, 0.8134, 0.6204]) + 1e-4)
    assert any("sampled on the surface of mesh" in message for message in result.messages)


def test_opengl_camera_axes_become_opencv_axes(fox):
    folder, _, _ = fox
    frames = json.loads((dataset_path("ngp_fox") / "transforms.json").read_text())["frames"]
    by_name = {os.path.basename(frame["file_path"]): np.array(frame["transform_matrix"]) for frame in frames}
    for record in _records(folder):
        opengl = by_name[record.image_path.name]
        # x stays, y (up -> down) and z (backward -> forward) flip; the camera centre is unchanged.
        expected = np.column_stack([opengl[:, 0], -opengl[:, 1], -opengl[:, 2], opengl[:, 3]])
        assert np.array_equal(record.T_pointcloud_camera, expected)


def test_distorted_images_are_undistorted_to_their_record_size(fox):
    folder, _, _ = fox
    records = _records(folder)
    assert all(record.image_path.is_relative_to(folder / "images") for record in records)
    for record in records[:3]:
        with Image.open(record.image_path) as image:
            assert image.size == (record.width, record.height)


def test_undistorted_image_matches_the_opencv_distortion_model(fox):
    folder, _, _ = fox
    meta = json.loads((dataset_path("ngp_fox") / "transforms.json").read_text())
    record = read_cameras_json(folder / "train.json")[0]
    error = undistortion_error(dataset_path("ngp_fox") / "images" / record.image_path.name, record.image_path,
                               record.K, *(meta[key] for key in ("fl_x", "fl_y", "cx", "cy", "k1", "k2", "p1", "p2")),
                               step=8)
    # Mean |difference| in 0..255 units; a half-pixel shift of K gives about 1.5 on this image.
    assert error < 1.0


def test_view_volume_points_are_seen_by_every_camera(fox):
    folder, _, _ = fox
    records = _records(folder)
    cloud = sample_view_volume(records, 300, seed=3)
    assert len(cloud) == 300
    for record in records:
        camera = cloud.xyz.astype(np.float64) @ record.viewmat[:3, :3].T + record.viewmat[:3, 3]
        pixels = (camera / camera[:, 2:]) @ record.K[:2].T
        assert np.all(camera[:, 2] > 0)
        assert np.all((pixels >= 0) & (pixels <= [record.width, record.height]))


def _fox_subset(tmp_path, frames, **top_level):
    """A transforms file in tmp_path whose frames point (absolute paths) at fox images."""
    root = dataset_path("ngp_fox")
    content = {**top_level, "frames": [{**frame, "file_path": str(root / frame["file_path"])} for frame in frames]}
    path = tmp_path / "transforms.json"
    path.write_text(json.dumps(content))
    return path


def test_per_frame_intrinsics_override_the_global_ones(tmp_path):
    frames = json.loads((dataset_path("ngp_fox") / "transforms.json").read_text())["frames"][:2]
    frames[1].update({"fl_x": 1000.0, "fl_y": 1001.0, "cx": 500.0, "cy": 900.0})
    path = _fox_subset(tmp_path, frames, camera_angle_x=0.7)
    convert_instant_ngp(path, tmp_path / "out", val_every=None, mesh_sample_points=10,
                        mesh_path=dataset_path("mesh_stanford") / "bunny.obj")
    first, second = read_cameras_json(tmp_path / "out" / "train.json")
    focal = 0.5 * 1080 / np.tan(0.35)  # w read from the image: 1080 x 1920
    assert np.allclose(first.K, [[focal, 0, 540], [0, focal, 960], [0, 0, 1]])
    assert np.array_equal(second.K, [[1000.0, 0, 500], [0, 1001.0, 900], [0, 0, 1]])
    assert first.image_path == dataset_path("ngp_fox") / frames[0]["file_path"]  # pinhole: used in place


def test_frame_missing_a_key_fails_with_exit_1_and_writes_nothing(tmp_path, capsys):
    frames = json.loads((dataset_path("ngp_fox") / "transforms.json").read_text())["frames"][:4]
    del frames[3]["transform_matrix"]
    path = _fox_subset(tmp_path, frames, camera_angle_x=0.7)
    code = run_tool("prepare_InstantNGP_with_mesh", "--transforms_train", path, "--output_dir", tmp_path / "out")
    assert code == 1
    assert f"{path}: frame 3: missing key 'transform_matrix'" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["transforms.json"]


def test_no_existing_image_fails_with_exit_1_and_writes_nothing(tmp_path, capsys):
    code = run_tool("prepare_InstantNGP_with_mesh", "--transforms_train", dataset_path("ngp_fox") / "transforms.json",
                    "--image_path_prefix", tmp_path, "--output_dir", tmp_path / "out")
    assert code == 1
    assert "no training frame has an existing image (67 missing" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("mesh, expected, view_volume", [(None, 10_000, 10_000), ("bunny.obj", 500, None)],
                         ids=["random", "mesh"])
def test_default_point_count_and_config_depend_on_the_point_source(tmp_path, mesh, expected, view_volume):
    # 500 on a mesh (the original tool's default); without one, 10,000 random points (BENCHMARKS.md),
    # and the config adds 10,000 view-volume points (measured on ngp_fox, BENCHMARKS.md "Background
    # coverage"); beyond-cloud points either way.
    frames = json.loads((dataset_path("ngp_fox") / "transforms.json").read_text())["frames"][:2]
    path = _fox_subset(tmp_path, frames, camera_angle_x=1.2)
    mesh_args = ["--mesh_path", dataset_path("mesh_stanford") / mesh] if mesh else []
    code = run_tool("prepare_InstantNGP_with_mesh", "--transforms_train", path, "--no_val",
                    "--output_dir", tmp_path / "out", *mesh_args)
    assert code == 0
    assert len(read_point_cloud(tmp_path / "out" / "point_cloud.parquet")) == expected
    config = yaml.safe_load((tmp_path / "out" / "train_config.yaml").read_text())
    assert config.get("initial-points", {}).get("random-in-view-volume") == view_volume
    assert config["initial-points"]["beyond-cloud"] == BEYOND_CLOUD_POINTS
    assert config["scale-schedule"] is True and "adaptive-controller-config" not in config
    load_train_config(tmp_path / "out" / "train_config.yaml")  # the trainer accepts it as written


@pytest.mark.parametrize("option", ["--num_points", "--num-points", "--mesh_sample_points"])
def test_num_points_sets_the_count_as_for_blender_and_the_old_name_still_works(tmp_path, capsys, option):
    frames = json.loads((dataset_path("ngp_fox") / "transforms.json").read_text())["frames"][:2]
    path = _fox_subset(tmp_path, frames, camera_angle_x=1.2)
    assert run_tool("prepare_InstantNGP_with_mesh", "--transforms_train", path, "--no_val", option, "7",
                    "--output_dir", tmp_path / "out") == 0
    assert len(read_point_cloud(tmp_path / "out" / "point_cloud.parquet")) == 7
    notice = "prepare_InstantNGP_with_mesh.py: warning: --mesh_sample_points is deprecated; use --num_points"
    assert (notice in capsys.readouterr().err) == (option == "--mesh_sample_points")


def test_non_rigid_transform_is_refused_as_the_training_reader_would(tmp_path, capsys):
    frames = json.loads((dataset_path("ngp_fox") / "transforms.json").read_text())["frames"][:3]
    frames[1]["transform_matrix"] = (np.asarray(frames[1]["transform_matrix"]) @ np.diag([1.01, 1, 1, 1])).tolist()
    path = _fox_subset(tmp_path, frames, camera_angle_x=0.7)
    code = run_tool("prepare_InstantNGP_with_mesh", "--transforms_train", path, "--output_dir", tmp_path / "out")
    assert code == 1
    err = capsys.readouterr().err
    assert f"{path}: frame 1: field 'transform_matrix'" in err and "expected a rigid camera-to-world" in err
    assert os.listdir(tmp_path) == ["transforms.json"]
