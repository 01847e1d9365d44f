"""parquet_to_ply.py / ply_to_parquet.py run from any folder; bad input: exit 1, nothing written."""
import subprocess
import sys

import pyarrow.parquet as pq
from conftest import REPO_ROOT, dataset_path
from synthetic_scenes import random_scene

from taichi_3dgs.scene.parquet import read_scene_parquet, write_scene_parquet
from taichi_3dgs.scene.ply import read_ply


def _run(script, *args, cwd):
    return subprocess.run([sys.executable, str(REPO_ROOT / script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def test_official_ply_to_parquet_and_back_reproduces_the_file(tmp_path):
    official = (dataset_path("3dgs_trained_ply") / "point_cloud" / "iteration_7000"
                / "point_cloud.ply")
    to_parquet = _run("ply_to_parquet.py", "--scene", str(official),
                      "--output", "out/scene.parquet", cwd=tmp_path)
    assert to_parquet.returncode == 0, to_parquet.stderr
    to_ply = _run("parquet_to_ply.py", "--scene", "out/scene.parquet",
                  "--output", "out/scene.ply", cwd=tmp_path)
    assert to_ply.returncode == 0, to_ply.stderr
    assert "colour error" not in to_ply.stdout  # linear scene: exact, no fit
    format_line = b"format binary_little_endian 1.0\n"  # + the SH degree comment write_ply adds
    assert (tmp_path / "out" / "scene.ply").read_bytes() == official.read_bytes().replace(
        format_line, format_line + b"comment taichi_3dgs sh_degree 3\n", 1)


def test_parquet_to_ply_converts_an_original_project_scene_and_prints_the_fit_error(tmp_path):
    # An original-project file: the trained columns without the taichi_3dgs metadata keys.
    write_scene_parquet(tmp_path / "ours.parquet",
                        random_scene(num_gaussians=40, color_activation="sigmoid"))
    table = pq.read_table(tmp_path / "ours.parquet")
    pq.write_table(table.replace_schema_metadata({}), tmp_path / "legacy.parquet")
    result = _run("parquet_to_ply.py", "--scene", "legacy.parquet",
                  "--output", "legacy.ply", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "mean absolute colour error 0.00" in result.stdout
    converted = read_ply(tmp_path / "legacy.ply")
    assert (converted.num_gaussians, converted.sh_degree) == (40, 3)


def test_converters_keep_the_antialiased_flag_and_splat_export_warns_it_is_lost(tmp_path):
    write_scene_parquet(tmp_path / "aa.parquet", random_scene(num_gaussians=10, antialiased=True))
    assert _run("parquet_to_ply.py", "--scene", "aa.parquet", "--output", "aa.ply",
                cwd=tmp_path).returncode == 0
    assert read_ply(tmp_path / "aa.ply").antialiased
    assert _run("ply_to_parquet.py", "--scene", "aa.ply", "--output", "back.parquet",
                cwd=tmp_path).returncode == 0
    assert read_scene_parquet(tmp_path / "back.parquet").antialiased
    splat = _run("parquet_to_ply.py", "--scene", "aa.parquet", "--output", "aa.splat", cwd=tmp_path)
    assert splat.returncode == 0, splat.stderr
    assert "parquet_to_ply.py: warning: aa.splat: the scene is antialiased" in splat.stderr


def test_parquet_to_ply_bad_input_exits_1_naming_file_and_column(tmp_path):
    table = pq.read_table(_scene_parquet(tmp_path))
    pq.write_table(table.drop_columns(["cov_s2"]), tmp_path / "broken.parquet")
    result = _run("parquet_to_ply.py", "--scene", "broken.parquet",
                  "--output", "broken.ply", cwd=tmp_path)
    assert result.returncode == 1
    assert "broken.parquet: missing trained-scene column(s) cov_s2" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "broken.ply").exists()


def test_ply_to_parquet_bad_input_exits_1_and_writes_nothing(tmp_path):
    (tmp_path / "broken.ply").write_bytes(b"ply\nformat binary_little_endian 1.0\n"
                                          b"element vertex 1\nproperty float x\nend_header\n"
                                          b"\x00\x00\x00\x00")
    result = _run("ply_to_parquet.py", "--scene", "broken.ply",
                  "--output", "broken.parquet", cwd=tmp_path)
    assert result.returncode == 1
    assert "broken.ply: vertex property y, z, f_dc_0" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.ply"]


def _scene_parquet(folder):
    path = folder / "scene.parquet"
    write_scene_parquet(path, random_scene(num_gaussians=5))
    return path
