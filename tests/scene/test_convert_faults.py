"""parquet_to_ply.py / ply_to_parquet.py on bad input: one line naming the file (and property or
row), exit 1, no traceback, nothing written; empty scenes convert to empty files. (Missing parquet
columns and PLY properties of the converters: tests/scene/test_scene_scripts.py.)"""
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from plyfile import PlyData
from script_faults import assert_script_fails, run_script
from synthetic_scenes import random_scene

from taichi_3dgs.scene.parquet import TRAINED_SCENE_COLUMNS, read_scene_parquet, write_scene_parquet
from taichi_3dgs.scene.ply import PLY_PROPERTIES, read_ply, write_ply


def _ply(folder, num_gaussians=6):
    write_ply(folder / "scene.ply", random_scene(num_gaussians=num_gaussians))
    return folder / "scene.ply"


def _text_ply_header(num_vertices, properties=PLY_PROPERTIES):
    return ("ply\nformat ascii 1.0\n" + f"element vertex {num_vertices}\n"
            + "".join(f"property float {name}\n" for name in properties) + "end_header\n")


def test_truncated_ply_exits_1_naming_the_file(tmp_path):
    data = _ply(tmp_path).read_bytes()
    (tmp_path / "cut.ply").write_bytes(data[:len(data) - 3])  # the last vertex lacks 3 bytes
    assert_script_fails("ply_to_parquet.py", "--scene", "cut.ply", "--output", "scene.parquet", cwd=tmp_path,
                        names=("cut.ply", "row 5", "end-of-file"))


def test_text_ply_with_a_word_among_the_numbers_exits_1_naming_the_property(tmp_path):
    row = ["0.5"] * len(PLY_PROPERTIES)
    row[PLY_PROPERTIES.index("opacity")] = "opaque"
    (tmp_path / "words.ply").write_text(_text_ply_header(1) + " ".join(row) + "\n")
    assert_script_fails("ply_to_parquet.py", "--scene", "words.ply", "--output", "scene.parquet", cwd=tmp_path,
                        names=("words.ply", "row 0", "'opacity'", "malformed"))


def test_ply_scene_without_a_rotation_property_exits_1_naming_it(tmp_path):
    properties = [name for name in PLY_PROPERTIES if name != "rot_2"]
    (tmp_path / "no_rot.ply").write_text(_text_ply_header(1, properties) + " ".join(["0.5"] * len(properties)) + "\n")
    assert_script_fails("parquet_to_ply.py", "--scene", "no_rot.ply", "--output", "out.splat", cwd=tmp_path,
                        names=("no_rot.ply", "vertex property rot_2 missing"))


def test_garbage_parquet_exits_1_naming_the_file(tmp_path):
    (tmp_path / "scene.parquet").write_bytes(b"\x00\x01 not parquet " * 20)
    assert_script_fails("parquet_to_ply.py", "--scene", "scene.parquet", "--output", "scene.ply", cwd=tmp_path,
                        names=("scene.parquet", "not a readable parquet file"))


def test_unknown_output_suffix_exits_1_before_reading(tmp_path):
    write_scene_parquet(tmp_path / "scene.parquet", random_scene(num_gaussians=4))
    assert_script_fails("parquet_to_ply.py", "--scene", "scene.parquet", "--output", "scene.obj", cwd=tmp_path,
                        names=("scene.obj", "unknown scene file suffix", ".splat"))


@pytest.mark.parametrize("script, source", [("parquet_to_ply.py", "scene.parquet"), ("ply_to_parquet.py", "scene.ply")])
def test_output_under_a_file_exits_1_naming_the_file(tmp_path, script, source):
    write_scene_parquet(tmp_path / "scene.parquet", random_scene(num_gaussians=4))
    _ply(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    output = "notes.txt/scene" + (".ply" if script == "parquet_to_ply.py" else ".parquet")
    assert_script_fails(script, "--scene", source, "--output", output, cwd=tmp_path,
                        names=("notes.txt",))


def test_parquet_of_zero_rows_converts_to_an_empty_ply_and_splat(tmp_path):
    # Zero rows as pandas writes an empty frame: columns without a type (Arrow null).
    pq.write_table(pa.table({name: pa.nulls(0) for name in TRAINED_SCENE_COLUMNS}), tmp_path / "empty.parquet")
    for output in ("empty.ply", "empty.splat"):
        result = run_script("parquet_to_ply.py", "--scene", "empty.parquet", "--output", output, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        # Issue 27 item 5: legal, but said, naming both files.
        assert (f"parquet_to_ply.py: warning: empty.parquet: the scene has no Gaussians, so {output} holds an empty "
                "scene") in result.stderr, result.stderr
    ply = PlyData.read(str(tmp_path / "empty.ply"))
    assert ply["vertex"].count == 0 and [p.name for p in ply["vertex"].properties] == list(PLY_PROPERTIES)
    assert read_ply(tmp_path / "empty.ply").num_gaussians == 0
    assert (tmp_path / "empty.splat").read_bytes() == b""


def test_ply_of_zero_vertices_converts_to_a_parquet_of_zero_rows(tmp_path):
    (tmp_path / "empty.ply").write_text(_text_ply_header(0))
    result = run_script("ply_to_parquet.py", "--scene", "empty.ply", "--output", "empty.parquet", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "warning: empty.ply: the scene has no Gaussians, so empty.parquet holds an empty scene" in result.stderr
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0
    assert read_scene_parquet(tmp_path / "empty.parquet").num_gaussians == 0
