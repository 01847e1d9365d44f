"""tools/make_demo_scene.py with an output folder it cannot create: one line naming the path, exit 1,
no traceback, the file in the way unchanged and nothing written."""
from script_faults import assert_script_fails

SCRIPT = "tools/make_demo_scene.py"
TINY = ("--width", "8", "--height", "8", "--num_views", "2", "--num_points", "10")


def test_output_dir_under_a_file_exits_1_naming_the_file(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    assert_script_fails(SCRIPT, "--output_dir", "notes.txt/demo", *TINY, cwd=tmp_path,
                        names=("notes.txt/demo", "not a directory"))


def test_output_dir_that_is_a_file_exits_1_naming_it(tmp_path):
    (tmp_path / "demo").write_text("mine")
    assert_script_fails(SCRIPT, "--output_dir", "demo", *TINY, cwd=tmp_path, names=("demo", "not a directory"))


def test_zero_views_are_refused_by_the_parser(tmp_path):
    assert_script_fails(SCRIPT, "--output_dir", "demo", "--num_views", "0", cwd=tmp_path,
                        names=("--num_views", "'0'"), exit_code=2)
