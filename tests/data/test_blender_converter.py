"""tools/prepare_blender_nerf.py and taichi_3dgs.data.blender on the real NeRF-synthetic chair."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import yaml

from conftest import dataset_path
from taichi_3dgs.data import read_cameras_json, read_point_cloud
from taichi_3dgs.data.blender import convert_blender_nerf
from tool_runner import run_tool

NUM_POINTS = 5000


@pytest.fixture(scope="module")
def chair(tmp_path_factory):
    output = tmp_path_factory.mktemp("chair") / "prepared"
    assert run_tool("prepare_blender_nerf", "--scene_path", dataset_path("blender_chair"), "--output_dir", output,
                    "--num_points", NUM_POINTS) == 0
    return output


def test_train_split_gives_100_records_and_test_split_25_validation_records(chair):
    train, val = read_cameras_json(chair / "train.json"), read_cameras_json(chair / "val.json")
    assert (len(train), len(val)) == (100, 25)
    assert {record.image_path.parent.name for record in val} == {"test"}
    assert all(record.image_path.suffix == ".png" and record.image_path.is_file() for record in train + val)


def test_intrinsics_come_from_camera_angle_x(chair):
    angle = json.loads((dataset_path("blender_chair") / "transforms_train.json").read_text())["camera_angle_x"]
    focal = 0.5 * 800 / math.tan(0.5 * angle)
    for record in read_cameras_json(chair / "train.json") + read_cameras_json(chair / "val.json"):
        assert (record.width, record.height) == (800, 800)
        assert np.allclose(record.K, [[focal, 0, 400], [0, focal, 400], [0, 0, 1]], rtol=0, atol=1e-9)
    assert focal == pytest.approx(1111.11, abs=0.01)


def test_cameras_sit_on_the_4_unit_sphere_looking_at_the_origin(chair):
    for record in read_cameras_json(chair / "train.json") + read_cameras_json(chair / "val.json"):
        centre = record.camera_center
        forward = record.T_pointcloud_camera[:3, 2]  # OpenCV: the camera looks along +z
        assert np.linalg.norm(centre) == pytest.approx(4.03, abs=0.05)
        assert forward @ (-centre / np.linalg.norm(centre)) > 0.99
        # The image's "down" (+y) points away from the world's up (+z) for this upright capture.
        assert record.T_pointcloud_camera[2, 1] < 0


def test_config_sets_a_white_background_for_the_alpha_images(chair):
    config = yaml.safe_load((chair / "train_config.yaml").read_text())
    assert config["background-color"] == [1.0, 1.0, 1.0]
    assert set(config) == {"train-dataset-json-path", "val-dataset-json-path", "pointcloud-parquet-path",
                           "summary-writer-log-dir", "output-model-dir", "image-downscale-factor", "background-color",
                           "scale-schedule"}  # no initial points beyond the cloud: nothing behind the object
    assert "background-color: [1.0, 1.0, 1.0]" in (chair / "train_config.yaml").read_text()


def test_initial_points_lie_in_the_view_of_every_camera(chair):
    cloud = read_point_cloud(chair / "point_cloud.parquet")
    assert len(cloud) == NUM_POINTS and cloud.rgb is None
    for record in read_cameras_json(chair / "train.json"):
        camera = cloud.xyz.astype(np.float64) @ record.viewmat[:3, :3].T + record.viewmat[:3, 3]
        pixels = (camera / camera[:, 2:]) @ record.K[:2].T
        assert np.all(camera[:, 2] > 0) and np.all((pixels >= 0) & (pixels <= 800))
    # The volume every camera sees is about graphdeco's NeRF-synthetic init cube [-1.3, 1.3]^3.
    assert np.all(np.abs(cloud.xyz) < 1.6) and np.all(cloud.xyz.max(axis=0) - cloud.xyz.min(axis=0) > 2.4)


def _scene_with(tmp_path, **splits):
    """A scene folder whose transforms_<split>.json hold the first n frames of the chair's split."""
    root = dataset_path("blender_chair")
    scene = tmp_path / "scene"
    scene.mkdir()
    for split, count in splits.items():
        content = json.loads((root / f"transforms_{split}.json").read_text())
        content["frames"] = [{**frame, "file_path": str(root / frame["file_path"])}
                             for frame in content["frames"][:count]]
        (scene / f"transforms_{split}.json").write_text(json.dumps(content))
    return scene


def test_val_split_is_used_when_there_is_no_test_split(tmp_path):
    scene = _scene_with(tmp_path, train=4, val=2)
    result = convert_blender_nerf(scene, tmp_path / "out", num_points=50)
    val = read_cameras_json(tmp_path / "out" / "val.json")
    assert (result.num_train, result.num_val) == (4, 2)
    assert [record.image_path.name for record in val] == ["r_0.png", "r_10.png"]
    assert val[0].image_path.parent.name == "val"


def test_missing_transforms_train_fails_with_exit_1_and_writes_nothing(tmp_path, capsys):
    scene = _scene_with(tmp_path, test=2)
    code = run_tool("prepare_blender_nerf", "--scene_path", scene, "--output_dir", tmp_path / "out")
    assert code == 1
    assert f"{scene}: no transforms_train.json" in capsys.readouterr().err
    assert os.listdir(tmp_path) == ["scene"]
