"""visualizer.py --headless on the real trained scene: an orbit rendered to PNG files."""
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT
from PIL import Image
from viewer_fixtures import trained_ply_path

N_FRAMES = 3


def _run(*args, cwd):
    return subprocess.run([sys.executable, str(REPO_ROOT / "visualizer.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


def _render_orbit(folder, *scenes):
    result = _run("--scene", *map(str, scenes), "--headless", "--output_dir", "frames",
                  "--n_frames", str(N_FRAMES), "--width", "96", "--height", "72", cwd=folder)
    assert result.returncode == 0, result.stderr
    paths = sorted((folder / "frames").glob("*.png"))
    assert [path.name for path in paths] == [f"frame_{i:04d}.png" for i in range(N_FRAMES)]
    return [np.asarray(Image.open(path)) for path in paths]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """The same orbit rendered by two separate processes."""
    return [_render_orbit(tmp_path_factory.mktemp(f"run{i}"), trained_ply_path()) for i in range(2)]


def test_headless_orbit_frames_show_the_scene_from_different_angles(two_runs):
    frames = two_runs[0]
    for frame in frames:
        assert frame.shape == (72, 96, 3)
        assert (frame.max(axis=2) > 10).mean() > 0.2  # a fifth of the image is covered
    assert np.abs(frames[0].astype(int) - frames[1]).mean() > 5  # the camera moved


def test_headless_orbit_is_deterministic(two_runs):
    for first, second in zip(*two_runs):
        np.testing.assert_array_equal(first, second)


def test_headless_bad_scene_file_exits_1_with_a_message(tmp_path):
    (tmp_path / "scene.txt").write_text("not a scene")
    result = _run("--parquet_path_list", "scene.txt", "--headless", "--output_dir", "frames",
                  "--n_frames", "2", cwd=tmp_path)
    assert result.returncode == 1
    assert "scene.txt: unknown scene file suffix" in result.stderr
    assert "Traceback" not in result.stderr
