"""Packaging for taichi_3dgs.

torch is declared as a range and is expected to be installed first (see README): on a
CPU-only machine `pip install torch==2.13.0` picks the CPU wheel, while letting pip resolve
torch on its own pulls the CUDA build with several GB of dependencies.
"""
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def read_requirements(path: Path) -> list[str]:
    """Return the requirement lines of `path`, without comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


setup(
    name="taichi_3dgs",
    version="0.1.0",
    description="3D Gaussian Splatting with a differentiable Taichi tile rasterizer (CPU and CUDA)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["taichi_3dgs", "taichi_3dgs.*"]),
    python_requires=">=3.10",
    install_requires=["torch>=2.1"] + read_requirements(HERE / "requirements.txt"),
    extras_require={"test": [line for line in read_requirements(HERE / "requirements-dev.txt")
                             if not line.startswith("-r")]},
)
