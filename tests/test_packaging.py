"""The package as a user installs it: a wheel built from pyproject.toml, installed into a new
virtual environment, whose `taichi-3dgs` command (not the checkout) generates a small demo scene
and trains it for two steps.

Kept cheap: the wheel is built offline without build isolation, and the new environment sees the
test environment's packages (torch, taichi, ...) through a .pth file instead of installing them;
only the wheel itself is installed into it (--no-deps). The checkout is never on its path.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from taichi_3dgs import __version__

TIMEOUT_S = 300


def _run(*args: object, cwd: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    result = subprocess.run([str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT_S)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """A new virtual environment holding the wheel; returns its folder."""
    root = tmp_path_factory.mktemp("packaging")
    source = root / "source"  # a copy, so that the build leaves nothing in the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(REPO_ROOT / name, source / name)
    shutil.copytree(REPO_ROOT / "taichi_3dgs", source / "taichi_3dgs", ignore=shutil.ignore_patterns("__pycache__"))
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", root / "dist", source, cwd=root)
    [wheel] = (root / "dist").glob("taichi_3dgs-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    site_packages = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    # The test environment's packages (pip, torch, taichi, ...), after the new environment's own.
    # Its .pth files are not processed, so an editable install of the checkout stays invisible.
    parents = [path for path in sys.path if path.endswith("site-packages")]
    (site_packages / "test_environment.pth").write_text("\n".join(parents) + "\n")
    _run(venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel, cwd=root)
    return venv


def test_the_installed_command_runs_the_installed_package(installed, tmp_path):
    result = _run(installed / "bin" / "taichi-3dgs", "--version", cwd=tmp_path)
    assert result.stdout == f"taichi-3dgs {__version__}\n"
    probe = _run(installed / "bin" / "python", "-c", "import taichi_3dgs; print(taichi_3dgs.__file__)", cwd=tmp_path)
    assert Path(probe.stdout.strip()).is_relative_to(installed)
    assert "prepare-colmap" in _run(installed / "bin" / "taichi-3dgs", "--help", cwd=tmp_path).stdout


def test_the_installed_command_generates_and_trains_the_demo(installed, tmp_path):
    command = installed / "bin" / "taichi-3dgs"
    made = _run(command, "make-demo-scene", "--output_dir", tmp_path / "data" / "demo", "--width", "32",
                "--height", "32", "--num_views", "6", "--num_points", "300", cwd=tmp_path)
    assert "demo scene written" in made.stdout
    (tmp_path / "config").mkdir()
    shutil.copy(REPO_ROOT / "config" / "demo.yaml", tmp_path / "config" / "demo.yaml")
    trained = _run(command, "train", "--train_config", tmp_path / "config" / "demo.yaml", "--num-iterations", "2",
                   "--val-interval", "2", "--checkpoint-interval", "2", "--logging.progress-bar", "false",
                   cwd=tmp_path)
    assert "PSNR" in trained.stdout + trained.stderr
    assert list((tmp_path / "output" / "demo").glob("*.parquet")), sorted((tmp_path / "output").rglob("*"))
