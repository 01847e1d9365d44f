"""visualizer.py --headless on bad input: one line naming the bad file, field or flag, no traceback,
no output folder. An empty scene renders background frames with a warning, and a frame that cannot
be written takes the frames and folders of its run with it."""
import numpy as np
import pytest
from PIL import Image
from script_faults import assert_script_fails, folder_state, run_script
from viewer_fixtures import write_camera_json

from taichi_3dgs.scene.ply import write_ply
from taichi_3dgs.viewer import app
from taichi_3dgs.viewer.camera_paths import look_at, pinhole_intrinsics
from tests.scene.synthetic_scenes import random_scene

SCRIPT = "visualizer.py"
SIZE = ("--width", "32", "--height", "24")


def _scene_ply(folder, name="scene.ply", num_gaussians=12):
    write_ply(folder / name, random_scene(num_gaussians=num_gaussians))
    return name


def _ring_json(folder):
    eyes = [40.0 * np.array([np.cos(angle), -0.2, np.sin(angle)]) for angle in (0.0, 2.0, 4.0)]
    poses = [look_at(eye, np.zeros(3), np.array([0.0, -1.0, 0.0])) for eye in eyes]
    write_camera_json(folder / "train.json", poses, pinhole_intrinsics(32, 24), 32, 24)
    return "train.json"


def test_truncated_scene_exits_1_naming_it_and_writes_no_frame(tmp_path):
    data = (tmp_path / _scene_ply(tmp_path)).read_bytes()
    (tmp_path / "scene.ply").write_bytes(data[:-200])
    assert_script_fails(SCRIPT, "--scene", "scene.ply", "--headless", "--output_dir", "frames", *SIZE,
                        cwd=tmp_path, names=("scene.ply", "end-of-file"))


def test_second_scene_bad_exits_1_naming_that_one(tmp_path):
    (tmp_path / "notes.ply").write_text("these are my notes, not a PLY file")
    assert_script_fails(SCRIPT, "--scene", _scene_ply(tmp_path), "notes.ply", "--headless",
                        "--output_dir", "frames", *SIZE, cwd=tmp_path, names=("notes.ply", "not a readable PLY"))


def test_camera_record_without_intrinsics_exits_1_naming_record_and_key(tmp_path):
    cameras = _ring_json(tmp_path)
    text = (tmp_path / cameras).read_text().replace('"camera_intrinsics"', '"intrinsics"', 1)
    (tmp_path / cameras).write_text(text)
    assert_script_fails(SCRIPT, "--scene", _scene_ply(tmp_path), "--cameras", cameras, "--headless",
                        "--output_dir", "frames", *SIZE, cwd=tmp_path,
                        names=("train.json", "record 0", "camera_intrinsics"))


def test_zero_width_is_refused_by_the_parser(tmp_path):
    assert_script_fails(SCRIPT, "--scene", _scene_ply(tmp_path), "--headless", "--output_dir", "frames",
                        "--width", "0", cwd=tmp_path, names=("--width", "'0'"), exit_code=2)


def test_empty_scene_renders_background_frames_with_one_warning(tmp_path):
    result = run_script(SCRIPT, "--scene", _scene_ply(tmp_path, "empty.ply", 0), "--headless",
                        "--output_dir", "frames", "--n_frames", "2", *SIZE, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "empty.ply" in line] == [
        f"{SCRIPT}: warning: empty.ply: the scene has no Gaussians, so every render is the background"]
    frames = sorted((tmp_path / "frames").iterdir())
    assert [frame.name for frame in frames] == ["frame_0000.png", "frame_0001.png"]
    for frame in frames:
        pixels = np.asarray(Image.open(frame))
        assert pixels.shape == (24, 32, 3) and not pixels.any()  # the black background


@pytest.fixture
def failing_second_write(monkeypatch):
    """`save_png` of the headless orbit writes its first frame, then fails as a full disk would."""
    writes, save = [], app.save_png

    def save_once(path, pixels):
        if writes:
            raise OSError(28, "No space left on device", str(path))
        save(path, pixels)
        writes.append(path)

    monkeypatch.setattr(app, "save_png", save_once)
    return writes


def test_failed_frame_removes_the_frames_and_the_folders_of_its_run(tmp_path, failing_second_write):
    with pytest.raises(OSError, match="No space left"):
        app.render_orbit([tmp_path / _scene_ply(tmp_path)], tmp_path / "new" / "frames", 3, 32, 24)
    assert len(failing_second_write) == 1  # one frame was written before the failure
    assert sorted(path.name for path in tmp_path.iterdir()) == ["scene.ply"]


def test_failed_frame_leaves_an_existing_folder_as_it_was(tmp_path, failing_second_write):
    (tmp_path / "frames").mkdir()
    (tmp_path / "frames" / "notes.txt").write_text("mine")
    before = folder_state(tmp_path / "frames")
    with pytest.raises(OSError, match="No space left"):
        app.render_orbit([tmp_path / _scene_ply(tmp_path)], tmp_path / "frames", 3, 32, 24)
    assert folder_state(tmp_path / "frames") == before
