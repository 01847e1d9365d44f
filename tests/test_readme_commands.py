"""Every `python ...` / `torchrun ...` command of README.md runs, in order, on the shipped and
../shared data (torchrun with 2 processes and a batch of 2).

The commands run in a scratch copy of the repository's layout (scripts and tools linked, config/
copied, `../shared` linked beside it), so data/, output/ and logs/ land in the scratch folder. To
keep the suite short, trainings run 2 steps (`--num-iterations 2`, evaluating and checkpointing at
step 2), frame counts shrink (`--n_frames 3`; structure from motion: `--max_image_size 800` for
prepare_images.py and refine_poses.py, a video's `--fps` becomes `--num_frames 12`), the window and
web viewers run `--headless` and the trainer's `--viewer` adds `--viewer_exit_when_done`;
every path and flag is the README's own, so a wrong one fails here.
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import DATASETS_DIR, REPO_ROOT, dataset_path

TRAIN_OVERRIDES = {"--num-iterations": "2", "--val-interval": "2", "--checkpoint-interval": "2",
                   "--logging.progress-bar": "false"}
LINKED = ["gaussian_point_train.py", "gaussian_point_render.py", "visualizer.py", "parquet_to_ply.py",
          "ply_to_parquet.py", "tools"]


def readme_commands(text: str) -> list[str]:
    """The `python ...` and `torchrun ...` lines of README.md's shell code blocks (indented or
    fenced, not ```python), with backslash continuations joined, in file order."""
    commands, pending, fence = [], None, None
    for line in text.splitlines():
        if line.startswith("```"):
            fence = None if fence is not None else (line[3:].strip() or "sh")
            continue
        in_code = fence not in (None, "python") or (fence is None and line.startswith("    "))
        stripped = line.strip()
        if pending is not None:
            pending += " " + stripped.rstrip("\\").strip()
            if not stripped.endswith("\\"):
                commands.append(pending)
                pending = None
        elif in_code and stripped.startswith(("python ", "torchrun ")):
            if stripped.endswith("\\"):
                pending = stripped.rstrip("\\").strip()
            else:
                commands.append(stripped)
    return commands


def _set_option(args: list[str], name: str, value: str) -> None:
    if name in args:
        args[args.index(name) + 1] = value
    else:
        args += [name, value]


def runnable(command: str) -> list[str]:
    """The argument list that runs `command` here, shortened as the module docstring says."""
    args = shlex.split(command, comments=True)
    if args[0] == "torchrun":  # the same launcher, 2 processes sharing a batch of 2 (gloo on the CPU)
        args = ["python", "-m", "torch.distributed.run", *args[1:]]
        _set_option(args, "--nproc_per_node", "2")
        _set_option(args, "--batch-size", "2")
    script = next(Path(arg).name for arg in args[1:] if arg.endswith(".py"))
    args = [sys.executable, *args[1:]]
    if script == "gaussian_point_train.py":
        for name, value in TRAIN_OVERRIDES.items():
            _set_option(args, name, value)
        if "--viewer" in args:  # a free port: the page itself is tested in tests/training/test_training_viewer.py
            _set_option(args, "--viewer_port", "0")
            args.append("--viewer_exit_when_done")  # it would serve the final scene until Ctrl-C
    if "--n_frames" in args:
        _set_option(args, "--n_frames", "3")
    if script == "refine_poses.py":  # structure from motion on smaller images
        _set_option(args, "--max_image_size", "800")
    if script == "prepare_images.py":  # structure from motion on fewer, smaller images
        _set_option(args, "--max_image_size", "800")
        if "--fps" in args:
            del args[args.index("--fps"):args.index("--fps") + 2]
            args += ["--num_frames", "12"]
    if script == "visualizer.py" and "--web" in args:  # the server runs until Ctrl-C: check its inputs headless
        args.remove("--web")
        for option in ("--port", "--host"):
            if option in args:
                del args[args.index(option):args.index(option) + 2]
    if script == "visualizer.py" and "--headless" not in args:
        args += ["--headless", "--output_dir", "output/readme_window_check", "--n_frames", "3"]
    return args


def test_the_readme_commands_are_found():
    commands = readme_commands((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    scripts = {next(Path(arg).name for arg in shlex.split(command) if arg.endswith(".py")) for command in commands}
    assert len(commands) >= 20
    assert scripts == {"make_demo_scene.py", "gaussian_point_train.py", "prepare_colmap.py", "prepare_images.py",
                       "prepare_InstantNGP_with_mesh.py", "prepare_blender_nerf.py", "parquet_to_ply.py",
                       "ply_to_parquet.py", "visualizer.py", "gaussian_point_render.py",
                       "generate_ellipse_path.py", "refine_poses.py"}


def test_readme_parser_joins_continuations_and_skips_python_blocks():
    text = "    python a.py --x 1 \\\n        --y 2\n```python\npython not_a_command\n```\n    pip install x\n"
    assert readme_commands(text) == ["python a.py --x 1 --y 2"]


@pytest.mark.slow
def test_every_readme_command_runs_in_order(tmp_path):
    dataset_path("colmap_desk")  # ../shared must be there (fails loudly under CI=true)
    work = tmp_path / "main"
    work.mkdir()
    (tmp_path / "shared").symlink_to(DATASETS_DIR.parent.resolve(), target_is_directory=True)
    for name in LINKED:
        (work / name).symlink_to(REPO_ROOT / name)
    shutil.copytree(REPO_ROOT / "config", work / "config")
    for command in readme_commands((REPO_ROOT / "README.md").read_text(encoding="utf-8")):
        result = subprocess.run(runnable(command), cwd=work, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"README command failed: {command}\n{result.stderr[-3000:]}"
        assert "Traceback" not in result.stderr, f"{command}\n{result.stderr[-3000:]}"
    assert (work / "output" / "demo" / "scene.splat").stat().st_size % 32 == 0
    assert len(list((work / "output" / "colmap_desk" / "flythrough" / "renders").glob("*.png"))) == 3
    effective = (work / "output" / "demo_short" / "train_config.yaml").read_text()
    assert "densify-until-iteration: 200" in effective  # a README override, written into the effective config
