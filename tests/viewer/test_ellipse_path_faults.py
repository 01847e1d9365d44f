"""tools/generate_ellipse_path.py on bad input: one line naming the camera file or the output,
exit 1, no traceback, no poses file. (A record missing a key and cameras with parallel optical
axes: tests/viewer/test_generate_ellipse_path.py.)"""
import json

import numpy as np
import pytest
from script_faults import assert_script_fails
from viewer_fixtures import write_camera_json

from taichi_3dgs.viewer.camera_paths import look_at, pinhole_intrinsics

SCRIPT = "tools/generate_ellipse_path.py"


def _ring(folder, count=4):
    eyes = [3.0 * np.array([np.cos(angle), -0.3, np.sin(angle)]) for angle in np.arange(count) * 2 * np.pi / count]
    poses = [look_at(eye, np.zeros(3), np.array([0.0, -1.0, 0.0])) for eye in eyes]
    write_camera_json(folder / "train.json", poses, pinhole_intrinsics(40, 30), 40, 30)
    return "train.json"


def _missing(folder):
    return ("train.json", "no such file")


def _not_json(folder):
    (folder / "train.json").write_text('[{"image_path": "a.png",')  # cut off mid-record
    return ("train.json", "not valid JSON")


def _no_records(folder):
    (folder / "train.json").write_text("[]")
    return ("train.json", "at least one camera record")


def _one_camera(folder):
    records = json.loads((folder / _ring(folder)).read_text())
    (folder / "train.json").write_text(json.dumps(records[:1]))
    return ("train.json", "C >= 2")


@pytest.mark.parametrize("make_cameras", [_missing, _not_json, _no_records, _one_camera],
                         ids=["missing", "not_json", "no_records", "one_camera"])
def test_camera_file_without_an_orbit_exits_1_naming_it(tmp_path, make_cameras):
    names = make_cameras(tmp_path)
    assert_script_fails(SCRIPT, "--cameras", "train.json", "--output", "poses.pt", cwd=tmp_path, names=names)


def test_output_not_named_pt_exits_1_before_reading(tmp_path):
    # A poses file named .json would be read back as a camera JSON by gaussian_point_render.py.
    assert_script_fails(SCRIPT, "--cameras", _ring(tmp_path), "--output", "poses.json", cwd=tmp_path,
                        names=("--output poses.json", ".pt"))


def test_output_under_a_file_exits_1_naming_the_file(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert_script_fails(SCRIPT, "--cameras", _ring(tmp_path), "--output", "notes.txt/poses.pt", cwd=tmp_path,
                        names=("notes.txt",))
