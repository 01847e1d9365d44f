"""Camera JSON validation: every bad record is refused with the file, the record index, the field
and what was expected (docs/FORMATS.md "Camera JSON"), by the reader and by the scripts that read it."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO_ROOT, dataset_path
from taichi_3dgs.data import read_cameras_json
from taichi_3dgs.data.camera_checks import ROTATION_TOLERANCE, pinhole_intrinsics_problem, rigid_transform_problem
from taichi_3dgs.data.nerf_transforms import OPENGL_TO_OPENCV

GOOD = {"image_path": "a.png", "T_pointcloud_camera": np.eye(4).tolist(),
        "camera_intrinsics": [[500, 0, 320], [0, 500, 240], [0, 0, 1]], "camera_width": 640,
        "camera_height": 480, "camera_id": 0}


def _pose(rotation: np.ndarray) -> list:
    pose = np.eye(4)
    pose[:3, :3] = rotation
    pose[:3, 3] = [0.5, -1.0, 3.0]
    return pose.tolist()


def _rotation_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _write(tmp_path, records) -> os.PathLike:
    path = tmp_path / "cams.json"
    path.write_text(json.dumps(records))  # json writes float("nan") as NaN, which json.loads reads back
    return path


@pytest.mark.parametrize("field, value, problem, expected", [
    ("T_pointcloud_camera", np.eye(4)[:3].tolist(), "is [[", "4x4"),
    ("T_pointcloud_camera", [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, "x"], [0, 0, 0, 1]], "is [[", "numbers"),
    ("T_pointcloud_camera", [[1, 0, 0, float("nan")], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]], "is [[",
     "finite"),
    ("T_pointcloud_camera", [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1]],
     "not orthonormal (max |R^T R - I| = 1)", "proper rotation"),
    ("T_pointcloud_camera", _pose(1.01 * _rotation_z(0.4)), "not orthonormal (max |R^T R - I| = 0.0201)",
     "R^T R = I within 0.001"),
    ("T_pointcloud_camera", _pose(np.array([[1, 0.05, 0], [0, 1, 0], [0, 0, 1]])), "not orthonormal", "det R = +1"),
    ("T_pointcloud_camera", _pose(np.diag([1.0, 1.0, -1.0])), "is a reflection (det R = -1)", "proper rotation"),
    ("T_pointcloud_camera", [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 1, 1]],
     "has last row [0.0, 0.0, 1.0, 1.0]", "[0, 0, 0, 1]"),
    ("T_pointcloud_camera", np.zeros((4, 4)).tolist(), "has last row [0.0, 0.0, 0.0, 0.0]", "rigid transform"),
    ("camera_intrinsics", [[500, 0], [0, 500]], "is [[", "3x3"),
    ("camera_intrinsics", [[0, 0, 320], [0, 500, 240], [0, 0, 1]], "has fx = 0", "fx, fy > 0"),
    ("camera_intrinsics", [[500, 0, 320], [0, -500, 240], [0, 0, 1]], "has fy = -500", "fx, fy > 0"),
    ("camera_intrinsics", [[500, 0, float("inf")], [0, 500, 240], [0, 0, 1]], "is [[", "finite"),
    ("camera_intrinsics", [[500, 2, 320], [0, 500, 240], [0, 0, 1]], "skew entries K[0, 1] = 2", "[[fx, 0, cx]"),
    ("camera_intrinsics", [[500, 0, 320], [0, 500, 240], [0, 0, 2]], "has last row [0.0, 0.0, 2.0]", "[0, 0, 1]]"),
    ("camera_width", 0, "is 0", "positive integer"),
    ("camera_width", "640", "is '640'", "positive integer"),
    ("camera_height", 480.5, "is 480.5", "positive integer"),
    ("camera_height", -480, "is -480", "positive integer"),
    ("image_path", 7, "is 7", "path string"),
    ("camera_intrinsics", None, "missing key", "camera_intrinsics"),
])
def test_bad_record_error_names_file_record_field_problem_and_expectation(tmp_path, field, value, problem, expected):
    bad = dict(GOOD)
    if value is None:
        del bad[field]
    else:
        bad[field] = value
    path = _write(tmp_path, [GOOD, bad])
    with pytest.raises(ValueError) as error:
        read_cameras_json(path)
    message = str(error.value)
    assert message.startswith(f"{path}: record 1: ")
    assert field in message and problem in message
    assert expected in message.split("; expected ", 1)[1]


def test_top_level_that_is_not_a_list_is_rejected(tmp_path):
    path = tmp_path / "cams.json"
    path.write_text(json.dumps({"frames": []}))
    with pytest.raises(ValueError, match=r"cams.json: top level is a JSON dict; expected an array"):
        read_cameras_json(path)


def test_rotation_tolerance_accepts_float_rounding_and_refuses_a_small_scale(tmp_path):
    # R^T R of s * R is s^2 I: s = 1 + 4e-4 is off by 8.0e-4 (inside 1e-3), s = 1 + 6e-4 by 1.2e-3.
    inside = dict(GOOD, T_pointcloud_camera=_pose((1 + 4e-4) * _rotation_z(1.0)))
    outside = dict(GOOD, T_pointcloud_camera=_pose((1 + 6e-4) * _rotation_z(1.0)))
    assert len(read_cameras_json(_write(tmp_path, [inside]))) == 1
    with pytest.raises(ValueError, match=r"record 0: field 'T_pointcloud_camera' has a rotation block that is not "
                                         r"orthonormal \(max \|R\^T R - I\| = 0.0012\)"):
        read_cameras_json(_write(tmp_path, [outside]))


@pytest.mark.parametrize("dataset, transforms", [("blender_chair", "transforms_train.json"),
                                                 ("ngp_fox", "transforms.json")])
def test_real_float32_poses_of_nerf_captures_are_accepted(tmp_path, dataset, transforms):
    frames = json.loads((dataset_path(dataset) / transforms).read_text())["frames"]
    poses = [np.array(frame["transform_matrix"]) @ OPENGL_TO_OPENCV for frame in frames]
    errors = [np.abs(pose[:3, :3].T @ pose[:3, :3] - np.eye(3)).max() for pose in poses]
    assert 1e-6 < max(errors) < ROTATION_TOLERANCE  # stored in float32: not orthonormal to float64 precision
    records = [dict(GOOD, T_pointcloud_camera=pose.tolist()) for pose in poses]
    assert len(read_cameras_json(_write(tmp_path, records))) == len(frames)


def test_problem_helpers_accept_a_real_pose_and_intrinsics():
    # gsplat's garden test scene: float32 world-to-camera viewmats and Ks of a real capture.
    garden = np.load(dataset_path("gsplat_test_garden") / "test_garden.npz")
    for viewmat, K in zip(garden["viewmats"], garden["Ks"]):
        assert rigid_transform_problem(viewmat) is None
        assert rigid_transform_problem(np.linalg.inv(viewmat.astype(np.float64))) is None
        assert pinhole_intrinsics_problem(K) is None


def test_render_script_refuses_a_bad_camera_json_before_writing_anything(tmp_path):
    bad = dict(GOOD, camera_intrinsics=[[500, 0, 320], [0, 0, 240], [0, 0, 1]])
    (tmp_path / "val.json").write_text(json.dumps([GOOD, GOOD, bad]))
    scene = dataset_path("3dgs_trained_ply") / "point_cloud" / "iteration_7000" / "point_cloud.ply"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "gaussian_point_render.py"), "--scene", str(scene),
                             "--cameras", "val.json", "--output_dir", "out"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert "gaussian_point_render.py: error: val.json: record 2: field 'camera_intrinsics' has fy = 0; expected" \
        in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["val.json"]
