"""Viewer session setup: image size, the first view, and the headless orbit with dataset cameras."""
import os
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT
from PIL import Image
from viewer_fixtures import trained_ply_path, write_camera_json

from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.viewer.app import DEFAULT_SIZE, create_controller, render_orbit, window_size
from taichi_3dgs.viewer.camera_paths import look_at, scene_bounds
from taichi_3dgs.viewer.geometry import invert_rigid
from taichi_3dgs.viewer.rendering import render_image, to_uint8
from taichi_3dgs.viewer.scene_objects import load_scene_objects

K = np.array([[800.0, 0.0, 960.0], [0.0, 800.0, 540.0], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def trained_object():
    [obj] = load_scene_objects([trained_ply_path()])
    return obj


def _ring(center, radius, count=4):
    """Cameras on a horizontal circle (world up = -y) around `center`, looking at it."""
    angles = 2 * np.pi * np.arange(count) / count
    eyes = center + radius * np.stack([np.sin(angles), np.zeros(count), -np.cos(angles)], axis=1)
    return [look_at(eye, center, np.array([0.0, -1.0, 0.0])) for eye in eyes]


def _record(pose):
    return CameraRecord(image_path="unused.png", K=K, T_pointcloud_camera=pose, width=1920, height=1080)


def test_window_size_defaults_and_dataset_cameras_keep_their_aspect():
    camera = _record(np.eye(4))
    assert window_size(None, None, []) == DEFAULT_SIZE
    assert window_size(None, None, [camera]) == (1280, 720)
    assert window_size(640, None, [camera]) == (640, 360)
    assert window_size(None, 90, [camera]) == (160, 90)
    assert window_size(300, 200, [camera]) == (300, 200)
    with pytest.raises(ValueError, match="--width"):
        window_size(0, 100, [])


def test_viewer_starts_at_the_first_dataset_camera_with_its_k_rescaled(trained_object):
    center, radius = scene_bounds(trained_object.scene.means)
    cameras = [_record(pose) for pose in _ring(center, radius)]
    controller = create_controller([trained_object], 160, 90, cameras)
    np.testing.assert_array_equal(controller.T_world_camera, cameras[0].T_pointcloud_camera)
    np.testing.assert_allclose(controller.K, np.diag([1 / 12, 1 / 12, 1.0]) @ K)
    controller.press("]")
    np.testing.assert_array_equal(controller.T_world_camera, cameras[1].T_pointcloud_camera)


def test_viewer_without_cameras_starts_at_the_fitted_camera_looking_at_the_scene(trained_object):
    center, radius = scene_bounds(trained_object.scene.means)
    controller = create_controller([trained_object], 160, 90, [])
    to_center = center - controller.T_world_camera[:3, 3]
    np.testing.assert_allclose(controller.T_world_camera[:3, 2], to_center / np.linalg.norm(to_center))
    assert controller.translation_step == pytest.approx(0.02 * radius)


def test_headless_orbit_with_cameras_starts_at_the_first_camera_of_a_ring(trained_object, tmp_path):
    center, radius = scene_bounds(trained_object.scene.means)
    poses = _ring(center, 0.8 * radius)
    write_camera_json(tmp_path / "train.json", poses, K, 1920, 1080)
    written = render_orbit([trained_ply_path()], tmp_path / "frames", 2, 96, 54, tmp_path / "train.json")
    assert [path.name for path in written] == ["frame_0000.png", "frame_0001.png"]
    # Cameras evenly on a circle at one height: the ellipse path is that circle, from camera 0.
    expected = to_uint8(render_image(trained_object.scene, invert_rigid(poses[0]),
                                     np.diag([0.05, 0.05, 1.0]) @ K, 96, 54))
    first = np.asarray(Image.open(written[0]))
    assert np.abs(first.astype(int) - expected).max() <= 1
    assert (first.max(axis=2) > 10).mean() > 0.2


def test_visualizer_without_a_display_exits_1_suggesting_headless(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "DISPLAY"}
    result = subprocess.run([sys.executable, str(REPO_ROOT / "visualizer.py"), "--parquet_path_list",
                             str(trained_ply_path())], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1
    assert "DISPLAY is not set" in result.stderr and "--headless" in result.stderr
    assert "Traceback" not in result.stderr
