"""The command-line conventions every script shares (taichi_3dgs/cli.py): one vocabulary with
deprecated aliases, defaults in --help, --help before heavy imports, one-line errors."""
import argparse
import os
import subprocess
import sys
import textwrap

import pytest
from conftest import REPO_ROOT

from taichi_3dgs.cli import ToolParser, positive_float, run_tool

SCRIPTS = ["gaussian_point_train.py", "gaussian_point_render.py", "visualizer.py", "parquet_to_ply.py",
           "ply_to_parquet.py", "tools/prepare_colmap.py", "tools/prepare_InstantNGP_with_mesh.py",
           "tools/prepare_blender_nerf.py", "tools/generate_ellipse_path.py", "tools/make_demo_scene.py", "tools/make_lpips_weights.py",
           "tools/prepare_images.py", "tools/refine_poses.py"]
HEAVY_MODULES = ("torch", "taichi", "pandas", "pyarrow", "pycolmap", "trimesh", "yaml")


def _help_output_and_modules(script):
    """Run `script --help` in a fresh interpreter; its help text and the heavy modules it loaded."""
    probe = textwrap.dedent(f"""
        import runpy, sys
        sys.argv = [{str(REPO_ROOT / script)!r}, "--help"]
        try:
            runpy.run_path(sys.argv[0], run_name="__main__")
        except SystemExit as exit:
            assert exit.code in (0, None), exit.code
        print("LOADED:" + ",".join(m for m in {HEAVY_MODULES!r} if m in sys.modules))
    """)
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                            cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    text, _, loaded = result.stdout.rpartition("LOADED:")
    return text, [name for name in loaded.strip().split(",") if name]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_shows_defaults_and_loads_no_heavy_module(script):
    text, loaded = _help_output_and_modules(script)
    assert "usage:" in text and "--debug" in text
    assert loaded == [], f"{script} --help imported {loaded} before parsing"


def test_help_lists_each_default():
    text, _ = _help_output_and_modules("tools/prepare_blender_nerf.py")
    assert "(default: 100000)" in text  # --num_points, from converter_options
    assert "(default: 0)" in text       # --seed


def test_deprecated_names_are_hidden_from_help():
    text, _ = _help_output_and_modules("gaussian_point_render.py")
    assert "--scene" in text and "--cameras" in text and "--output_dir" in text
    for old in ("--parquet_path", "--poses", "--output_prefix", "--gt_prefix"):
        assert old not in text


def test_deprecated_alias_works_and_prints_one_notice(tmp_path, capsys):
    parser = ToolParser("tool.py", "test")
    parser.add_argument("--output_dir", required=True, deprecated=("--output_path",))
    args = parser.parse_args(["--output_path", str(tmp_path)])
    assert args.output_dir == str(tmp_path)
    assert capsys.readouterr().err == "tool.py: warning: --output_path is deprecated; use --output_dir\n"
    parser.parse_args([f"--output_dir={tmp_path}"])
    assert capsys.readouterr().err == ""


def test_deprecated_alias_of_a_script_still_converts(tmp_path):
    from conftest import dataset_path

    official = dataset_path("3dgs_trained_ply") / "point_cloud" / "iteration_7000" / "point_cloud.ply"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "ply_to_parquet.py"), "--ply_path", str(official),
                             "--parquet_path", "scene.parquet"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "scene.parquet").stat().st_size > 0
    assert result.stderr.splitlines() == [
        "ply_to_parquet.py: warning: --ply_path is deprecated; use --scene",
        "ply_to_parquet.py: warning: --parquet_path is deprecated; use --output"]


def test_val_sample_zero_still_means_no_validation(capsys):
    sys.path.insert(0, str(REPO_ROOT / "tools"))
    try:
        import prepare_InstantNGP_with_mesh as tool
    finally:
        sys.path.pop(0)
    with pytest.raises(SystemExit):  # stops at the missing --transforms_train, after parsing --val_sample
        tool.main(["--val_sample", "0", "--output_dir", "x", "--transforms_test", "t.json"])
    err = capsys.readouterr().err
    assert "--val_sample is deprecated; use --val_every N (or --no_val for 0)" in err
    assert "--transforms_test chooses the validation frames" in err or "--transforms_train" in err


def _raise(error):
    def work():
        raise error
    return work


def test_bad_input_is_one_line_with_exit_1(capsys):
    assert run_tool("tool.py", _raise(ValueError("scene.parquet: column 'x' missing"))) == 1
    assert capsys.readouterr().err == "tool.py: error: scene.parquet: column 'x' missing\n"


def test_os_error_names_the_file(capsys):
    assert run_tool("tool.py", _raise(PermissionError(13, "Permission denied", "/out/scene.ply"))) == 1
    assert capsys.readouterr().err == "tool.py: error: /out/scene.ply: permission denied\n"


def test_unexpected_error_is_one_line_without_traceback(capsys, monkeypatch):
    monkeypatch.delenv("TAICHI_3DGS_DEBUG", raising=False)
    assert run_tool("tool.py", _raise(TypeError("bad operand"))) == 1
    err = capsys.readouterr().err
    assert err == "tool.py: error: unexpected TypeError: bad operand (rerun with --debug for the traceback)\n"


@pytest.mark.parametrize("flag, env", [(True, ""), (False, "1")], ids=["--debug", "TAICHI_3DGS_DEBUG=1"])
def test_debug_shows_the_traceback(capsys, monkeypatch, flag, env):
    monkeypatch.setenv("TAICHI_3DGS_DEBUG", env)
    assert run_tool("tool.py", _raise(TypeError("bad operand")), debug=flag) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "TypeError: bad operand" in err
    assert err.endswith("tool.py: error: unexpected TypeError: bad operand\n")


def test_ctrl_c_is_one_line_with_exit_130(capsys):
    assert run_tool("tool.py", _raise(KeyboardInterrupt())) == 130
    assert capsys.readouterr().err == "tool.py: interrupted\n"


def test_warnings_print_with_the_tool_name(capsys):
    import warnings

    def work():
        warnings.warn("17 frames have no image")
        return 0

    assert run_tool("tool.py", work) == 0
    assert capsys.readouterr().err == "tool.py: warning: 17 frames have no image\n"


def _run(*args, **kwargs):
    return subprocess.run([sys.executable, *map(str, args)], capture_output=True, text=True, timeout=120,
                          cwd=REPO_ROOT, **kwargs)


@pytest.mark.parametrize("script", SCRIPTS)
def test_every_script_prints_the_package_version(script):
    from taichi_3dgs import __version__

    result = _run(REPO_ROOT / script, "--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{script.rsplit('/', 1)[-1]} (taichi_3dgs) {__version__}\n"


def test_every_script_is_a_registered_command_with_the_same_options():
    from taichi_3dgs.commands import COMMANDS

    assert sorted(command.script for command in COMMANDS.values()) == sorted(SCRIPTS)
    for name, command in COMMANDS.items():
        script_help = _help_output_and_modules(command.script)[0]
        result = _run("-m", "taichi_3dgs", name, "--help")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"usage: taichi-3dgs {name} [-h]")
        assert result.stdout.split("\noptions:")[1] == script_help.split("\noptions:")[1], name


def test_the_command_names_an_unknown_subcommand_and_its_closest_match():
    result = _run("-m", "taichi_3dgs", "ellipse-pth")
    assert result.returncode == 2
    assert result.stderr == "taichi-3dgs: error: unknown command 'ellipse-pth'; did you mean ellipse-path?\n"


def test_an_error_of_a_subcommand_names_the_subcommand(tmp_path):
    result = _run("-m", "taichi_3dgs", "import-ply", "--scene", tmp_path / "missing.ply", "--output", tmp_path / "x")
    assert result.returncode == 1
    assert result.stderr.startswith("taichi-3dgs import-ply: error: ") and "missing.ply" in result.stderr


def test_options_take_hyphens_or_underscores_and_help_shows_one_spelling(tmp_path, capsys):
    parser = ToolParser("tool.py", "test")
    parser.add_argument("--output_dir", required=True, deprecated=("--output_path",))
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--val_every", type=int)
    args = parser.parse_args(["--output-dir", "a", "--val-every", "3"])
    assert (args.output_dir, args.val_every) == ("a", 3)
    assert capsys.readouterr().err == ""
    assert parser.parse_args(["--output-path", "b"]).output_dir == "b"
    assert capsys.readouterr().err == "tool.py: warning: --output-path is deprecated; use --output_dir\n"
    text = parser.format_help()
    assert "--output_dir" in text and "--val_every" in text
    assert "--output-dir" not in text and "--val-every" not in text and "--output_path" not in text


@pytest.mark.parametrize("banner", ["", "1"], ids=["default", "ENABLE_TAICHI_HEADER_PRINT=1"])
def test_the_tools_silence_the_taichi_banner_unless_asked(banner):
    env = {key: value for key, value in os.environ.items() if key != "ENABLE_TAICHI_HEADER_PRINT"}
    if banner:
        env["ENABLE_TAICHI_HEADER_PRINT"] = banner
    result = subprocess.run([sys.executable, "-c", "import taichi_3dgs.cli, taichi"], capture_output=True, text=True,
                            timeout=120, cwd=REPO_ROOT, env={**env, "PYTHONPATH": str(REPO_ROOT)})
    assert result.returncode == 0, result.stderr
    assert ("[Taichi] version" in result.stdout + result.stderr) == bool(banner)


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "two"])
def test_positive_float_refuses_what_is_not_a_finite_number_above_zero(text):
    with pytest.raises(argparse.ArgumentTypeError, match=repr(text)):
        positive_float(text)
    assert positive_float("0.5") == 0.5
