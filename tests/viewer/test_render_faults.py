"""gaussian_point_render.py on bad input: one line naming the bad file or field, exit 1, no
traceback, nothing written. And renders that succeed but signal a mistake: an empty scene renders
the background with one warning, cameras that see no Gaussian are named in one warning (the scene
checks themselves: tests/scene/test_scene_diagnostics.py)."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from script_faults import assert_script_fails, run_script

from taichi_3dgs.scene.parquet import TRAINED_SCENE_COLUMNS, write_scene_parquet
from taichi_3dgs.scene.ply import write_ply
from taichi_3dgs.viewer.camera_paths import look_at, pinhole_intrinsics
from taichi_3dgs.viewer.geometry import invert_rigid
from taichi_3dgs.viewer.poses import CameraPath, save_camera_path
from tests.scene.synthetic_scenes import random_scene

SCRIPT = "gaussian_point_render.py"
WIDTH, HEIGHT = 32, 24
SCENE = random_scene(num_gaussians=12)  # means ~ N(0, 10^2), scales ~ 0.14


def _poses(folder, look_away=()):
    """poses.pt: 3 cameras 40 units from the origin looking at it, except those in `look_away`,
    which look the other way."""
    viewmats = []
    for index, angle in enumerate((0.0, 2.0, 4.0)):
        eye = 40.0 * np.array([np.cos(angle), -0.2, np.sin(angle)])
        target = 2.0 * eye if index in look_away else np.zeros(3)
        viewmats.append(invert_rigid(look_at(eye, target, np.array([0.0, -1.0, 0.0]))))
    K = pinhole_intrinsics(WIDTH, HEIGHT)
    save_camera_path(folder / "poses.pt", CameraPath(np.stack(viewmats), np.stack([K] * 3), WIDTH, HEIGHT))
    return "poses.pt"


def _scene_parquet(folder, name="scene.parquet", scene=SCENE):
    write_scene_parquet(folder / name, scene)
    return name


def _garbage(folder):
    (folder / "garbage.parquet").write_bytes(b"PAR1 but nothing after it" * 4)
    return "garbage.parquet", ("garbage.parquet", "not a readable parquet file")


def _truncated_ply(folder):
    write_ply(folder / "full.ply", SCENE)
    data = (folder / "full.ply").read_bytes()
    (folder / "truncated.ply").write_bytes(data[:len(data) - 100])
    (folder / "full.ply").unlink()
    return "truncated.ply", ("truncated.ply", "end-of-file")


def _wrong_suffix(folder):
    write_scene_parquet(folder / "scene.parquet", SCENE)
    (folder / "scene.parquet").rename(folder / "scene.pq")
    return "scene.pq", ("scene.pq", "unknown scene file suffix", ".parquet")


def _missing_column(folder):
    table = pq.read_table(folder / _scene_parquet(folder))
    pq.write_table(table.drop_columns(["alpha0"]), folder / "no_opacity.parquet")
    return "no_opacity.parquet", ("no_opacity.parquet", "alpha0")


def _nan_value(folder):
    table = pq.read_table(folder / _scene_parquet(folder))
    values = table.column("cov_s1").to_numpy().copy()
    values[5] = np.nan
    table = table.set_column(table.schema.get_field_index("cov_s1"), "cov_s1", pa.array(values))
    pq.write_table(table, folder / "nan.parquet")
    return "nan.parquet", ("nan.parquet", "column 'cov_s1' row 5")


@pytest.mark.parametrize("make_scene", [_garbage, _truncated_ply, _wrong_suffix, _missing_column, _nan_value],
                         ids=["garbage", "truncated_ply", "wrong_suffix", "missing_column", "nan_value"])
def test_bad_scene_file_exits_1_naming_it_and_writes_nothing(tmp_path, make_scene):
    scene, names = make_scene(tmp_path)
    assert_script_fails(SCRIPT, "--scene", scene, "--cameras", _poses(tmp_path), "--output_dir", "out",
                        cwd=tmp_path, names=names)


def test_missing_camera_json_exits_1_naming_it(tmp_path):
    assert_script_fails(SCRIPT, "--scene", _scene_parquet(tmp_path), "--cameras", "val.json",
                        "--output_dir", "out", cwd=tmp_path, names=("val.json", "no such file"))


def test_output_dir_that_is_a_file_exits_1_and_keeps_the_file(tmp_path):
    (tmp_path / "out").write_text("my notes")
    assert_script_fails(SCRIPT, "--scene", _scene_parquet(tmp_path), "--cameras", _poses(tmp_path),
                        "--output_dir", "out", cwd=tmp_path, names=("out",))


def test_output_dir_under_a_file_exits_1_naming_the_file(tmp_path):
    # Stands in for a read-only folder, which root (CI) could write into anyway.
    (tmp_path / "notes.txt").write_text("my notes")
    assert_script_fails(SCRIPT, "--scene", _scene_parquet(tmp_path), "--cameras", _poses(tmp_path),
                        "--output_dir", "notes.txt/out", cwd=tmp_path, names=("notes.txt",))


def test_empty_scene_renders_the_background_with_one_warning(tmp_path):
    # Zero rows as pandas writes them: columns without a type (Arrow null).
    pq.write_table(pa.table({name: pa.nulls(0) for name in TRAINED_SCENE_COLUMNS}), tmp_path / "empty.parquet")
    result = run_script(SCRIPT, "--scene", "empty.parquet", "--cameras", _poses(tmp_path), "--output_dir", "out",
                        "--white_background", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    warnings = [line for line in result.stderr.splitlines() if "empty.parquet" in line]
    assert warnings == [f"{SCRIPT}: warning: empty.parquet: the scene has no Gaussians, so every render is "
                        "the background"]
    assert "visible" not in result.stderr  # the empty scene says it all; no per-camera warning
    for index in range(3):
        pixels = np.asarray(Image.open(tmp_path / "out" / "renders" / f"{index:05d}.png"))
        assert pixels.shape == (HEIGHT, WIDTH, 3) and (pixels == 255).all()


def test_cameras_that_see_no_gaussian_are_named_in_one_warning(tmp_path):
    result = run_script(SCRIPT, "--scene", _scene_parquet(tmp_path), "--cameras", _poses(tmp_path, look_away=(0, 2)),
                        "--output_dir", "out", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    blind = [line for line in result.stderr.splitlines() if "visible" in line]
    assert blind == [f"{SCRIPT}: warning: no Gaussian is visible from cameras 0, 2 of poses.pt (their renders "
                     "are the background)"]
    renders = [np.asarray(Image.open(tmp_path / "out" / "renders" / f"{index:05d}.png")) for index in range(3)]
    assert not renders[0].any() and not renders[2].any() and renders[1].any()



def test_camera_json_without_records_is_refused(tmp_path):
    (tmp_path / "empty.json").write_text("[]")
    scene = _scene_parquet(tmp_path)
    assert_script_fails("gaussian_point_render.py", "--scene", str(scene), "--cameras", "empty.json",
                        "--output_dir", "out", cwd=tmp_path, names=("empty.json", "no camera record"))
