"""poses.pt validation: a camera path that would render blank or distorted frames (zero focal
lengths, all-zero or non-rigid viewmats) is refused on load, naming the file, the frame and the
key (docs/FORMATS.md "poses.pt"), and gaussian_point_render.py writes nothing then."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT, dataset_path
from viewer_fixtures import trained_ply_path

from taichi_3dgs.viewer.poses import CameraPath, load_camera_path, save_camera_path


def _garden() -> CameraPath:
    """gsplat's real garden test cameras: 3 float32 world-to-camera viewmats and Ks, 648x420."""
    garden = np.load(dataset_path("gsplat_test_garden") / "test_garden.npz")
    return CameraPath(garden["viewmats"].astype(np.float64), garden["Ks"].astype(np.float64),
                      int(garden["width"]), int(garden["height"]))


def _save_with(tmp_path, key: str, frame: int, value) -> os.PathLike:
    """The garden path with `key`[frame] replaced by `value`, saved to tmp_path/poses.pt."""
    path = _garden()
    arrays = {"viewmats": path.viewmats.copy(), "Ks": path.Ks.copy()}
    arrays[key][frame] = value
    save_camera_path(tmp_path / "poses.pt", CameraPath(arrays["viewmats"], arrays["Ks"], path.width, path.height))
    return tmp_path / "poses.pt"


def _scaled_rotation(scale: float) -> np.ndarray:
    viewmat = _garden().viewmats[0].copy()
    viewmat[:3, :3] *= scale
    return viewmat


def test_real_float32_camera_path_loads_unchanged(tmp_path):
    path = _garden()
    save_camera_path(tmp_path / "poses.pt", path)
    loaded = load_camera_path(tmp_path / "poses.pt")
    np.testing.assert_array_equal(loaded.viewmats, path.viewmats)
    np.testing.assert_array_equal(loaded.Ks, path.Ks)
    assert (loaded.width, loaded.height) == (648, 420)


@pytest.mark.parametrize("key, frame, value, problem", [
    ("Ks", 1, np.diag([0.0, 481.5, 1.0]), "'Ks' has fx = 0"),
    ("Ks", 2, np.diag([480.6, -1.0, 1.0]), "'Ks' has fy = -1"),
    ("Ks", 0, np.zeros((3, 3)), "'Ks' has fx = 0"),
    ("Ks", 1, np.array([[480.6, 3.0, 324.2], [0, 481.5, 210.1], [0, 0, 1]]), "'Ks' has skew entries K[0, 1] = 3"),
    ("Ks", 1, np.full((3, 3), np.nan), "'Ks' has a non-finite entry"),
    ("viewmats", 2, np.zeros((4, 4)), "'viewmats' has last row [0.0, 0.0, 0.0, 0.0]"),
    ("viewmats", 1, np.full((4, 4), np.inf), "'viewmats' has a non-finite entry"),
    ("viewmats", 0, _scaled_rotation(0.5), "'viewmats' has a rotation block that is not orthonormal "
                                           "(max |R^T R - I| = 0.75)"),
    ("viewmats", 1, np.diag([1.0, -1.0, 1.0, 1.0]), "'viewmats' has a rotation block that is a reflection (det R = -1)"),
])
def test_bad_frame_is_refused_naming_file_frame_key_and_expectation(tmp_path, key, frame, value, problem):
    path = _save_with(tmp_path, key, frame, value)
    with pytest.raises(ValueError) as error:
        load_camera_path(path)
    message = str(error.value)
    assert message.startswith(f"{path}: frame {frame}: {problem}")
    expected = "fx, fy > 0" if key == "Ks" else "R^T R = I within 0.001, det R = +1), world-to-camera"
    assert expected in message.split("; expected ", 1)[1]


def test_camera_path_without_frames_is_refused(tmp_path):
    save_camera_path(tmp_path / "poses.pt", CameraPath(np.zeros((0, 4, 4)), np.zeros((0, 3, 3)), 64, 48))
    with pytest.raises(ValueError, match=r"poses.pt: 'viewmats' holds no frame; expected at least one camera"):
        load_camera_path(tmp_path / "poses.pt")


@pytest.mark.parametrize("key, value", [("width", 0), ("height", 480.0), ("width", True)])
def test_image_size_that_is_not_a_positive_int_is_refused(tmp_path, key, value):
    path = _garden()
    data = {"viewmats": torch.from_numpy(path.viewmats), "Ks": torch.from_numpy(path.Ks), "width": 648,
            "height": 420, key: value}
    torch.save(data, tmp_path / "poses.pt")
    with pytest.raises(ValueError, match=rf"poses.pt: '{key}' is {value!r}, expected a positive int \(pixels\)"):
        load_camera_path(tmp_path / "poses.pt")


def _render(tmp_path, *args):
    return subprocess.run([sys.executable, str(REPO_ROOT / "gaussian_point_render.py"), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_render_script_refuses_a_zero_focal_length_and_leaves_the_output_folder_as_it_was(tmp_path):
    _save_with(tmp_path, "Ks", 2, np.diag([0.0, 0.0, 1.0]))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "notes.txt").write_text("mine")
    result = _render(tmp_path, "--scene", str(trained_ply_path()), "--cameras", "poses.pt", "--output_dir", "out",
                     "--video", "out/path.mp4")
    assert result.returncode == 1
    assert "gaussian_point_render.py: error: poses.pt: frame 2: 'Ks' has fx = 0; expected" in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path / "out") == ["notes.txt"]


def test_render_script_with_a_corrupt_scene_creates_no_output_folder(tmp_path):
    save_camera_path(tmp_path / "poses.pt", _garden())
    (tmp_path / "scene.ply").write_bytes(trained_ply_path().read_bytes()[:5000])  # header and a few rows
    result = _render(tmp_path, "--scene", "scene.ply", "--cameras", "poses.pt", "--output_dir", "out")
    assert result.returncode == 1
    assert "gaussian_point_render.py: error: " in result.stderr and "scene.ply" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(os.listdir(tmp_path)) == ["poses.pt", "scene.ply"]
