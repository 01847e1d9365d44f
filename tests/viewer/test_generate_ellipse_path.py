"""tools/generate_ellipse_path.py and the poses.pt file it writes."""
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from viewer_fixtures import write_camera_json

from taichi_3dgs.viewer.camera_paths import look_at
from taichi_3dgs.viewer.poses import CameraPath, load_camera_path, save_camera_path

K = np.array([[120.0, 0.0, 80.0], [0.0, 110.0, 60.0], [0.0, 0.0, 1.0]])


def _run(*args, cwd):
    return subprocess.run([sys.executable, str(REPO_ROOT / "tools" / "generate_ellipse_path.py"), *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))


def _ring_cameras(count=6, radius=3.0):
    angles = 2 * math.pi * np.arange(count) / count
    eyes = np.stack([radius * np.cos(angles), np.full(count, -1.0), radius * np.sin(angles)], axis=1)
    return [look_at(eye, np.zeros(3), np.array([0.0, -1.0, 0.0])) for eye in eyes]


def test_script_writes_a_closed_orbit_around_the_focus_point_as_poses_pt(tmp_path):
    write_camera_json(tmp_path / "train.json", _ring_cameras(), K, 160, 120)
    (tmp_path / "run").mkdir()
    result = _run("--cameras", "../train.json", "--n_frames", "30", "--output", "out/poses.pt",
                  cwd=tmp_path / "run")
    assert result.returncode == 0, result.stderr
    data = torch.load(tmp_path / "run" / "out" / "poses.pt", weights_only=True)
    assert sorted(data) == ["Ks", "height", "viewmats", "width"]
    assert (data["width"], data["height"]) == (160, 120)
    assert data["viewmats"].shape == (30, 4, 4) and data["viewmats"].dtype == torch.float64
    torch.testing.assert_close(data["Ks"], torch.from_numpy(K).expand(30, 3, 3))
    eyes = torch.linalg.inv(data["viewmats"])[:, :3, 3].numpy()
    # The ring's focus is the origin and its cameras stand 1 unit above it (world up = -y).
    np.testing.assert_allclose(eyes[:, 1], -1.0, atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(eyes[:, [0, 2]], axis=1), 3.0, atol=1e-9)
    centre_in_camera = data["viewmats"][:, :3, 3].numpy()  # the origin in camera coordinates
    np.testing.assert_allclose(centre_in_camera[:, :2], 0.0, atol=1e-9)
    assert np.all(centre_in_camera[:, 2] > 0)


def test_width_sets_the_path_size_with_k_rescaled_and_the_same_poses(tmp_path):
    write_camera_json(tmp_path / "train.json", _ring_cameras(), K, 160, 120)
    assert _run("--cameras", "train.json", "--n_frames", "4", "--output", "full.pt", cwd=tmp_path).returncode == 0
    result = _run("--cameras", "train.json", "--n_frames", "4", "--output", "wide.pt", "--width", "640", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    full, wide = load_camera_path(tmp_path / "full.pt"), load_camera_path(tmp_path / "wide.pt")
    assert (wide.width, wide.height) == (640, 480)  # the height from the cameras' 4:3
    np.testing.assert_allclose(wide.Ks, np.diag([4.0, 4.0, 1.0]) @ full.Ks)
    np.testing.assert_array_equal(wide.viewmats, full.viewmats)


def test_poses_file_round_trips(tmp_path):
    path = CameraPath(np.stack([np.eye(4)] * 2), np.stack([K] * 2), 160, 120)
    save_camera_path(tmp_path / "poses.pt", path)
    loaded = load_camera_path(tmp_path / "poses.pt")
    np.testing.assert_array_equal(loaded.viewmats, path.viewmats)
    np.testing.assert_array_equal(loaded.Ks, path.Ks)
    assert (loaded.width, loaded.height) == (160, 120)


def test_poses_file_with_a_missing_key_names_file_and_key(tmp_path):
    torch.save({"viewmats": torch.eye(4)[None], "width": 4, "height": 3}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"bad.pt: missing key\(s\) \['Ks'\]"):
        load_camera_path(tmp_path / "bad.pt")


def test_script_bad_cameras_file_exits_1_naming_the_record_and_writes_nothing(tmp_path):
    (tmp_path / "train.json").write_text('[{"image_path": "a.png"}]')
    result = _run("--cameras", "train.json", "--output", "poses.pt", cwd=tmp_path)
    assert result.returncode == 1
    assert "train.json: record 0: missing key 'T_pointcloud_camera'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "poses.pt").exists()


def test_script_with_parallel_cameras_exits_1_with_the_reason(tmp_path):
    poses = [np.eye(4) + np.pad(np.eye(3)[:, :1] * i, ((0, 1), (3, 0))) for i in range(3)]
    write_camera_json(tmp_path / "train.json", poses, K, 160, 120)
    result = _run("--cameras", "train.json", "--output", "poses.pt", cwd=tmp_path)
    assert result.returncode == 1
    assert "parallel" in result.stderr and "Traceback" not in result.stderr
