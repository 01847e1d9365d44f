"""Scene files by suffix, and the conversions behind `parquet_to_ply.py` / `ply_to_parquet.py`."""
from __future__ import annotations

import os
from pathlib import Path

from taichi_3dgs.scene.color_conversion import DEFAULT_NUM_DIRECTIONS, sigmoid_to_linear
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.parquet import read_scene_parquet, write_scene_parquet
from taichi_3dgs.scene.ply import read_ply, write_ply

SCENE_SUFFIXES = (".parquet", ".ply")


def read_scene(path: str | os.PathLike) -> GaussianScene:
    """Read a trained scene from a `.parquet` (`read_scene_parquet`) or `.ply` (`read_ply`) file.

    Raises:
        ValueError: another suffix (case-insensitive match), or what the reader raises.
        FileNotFoundError: `path` does not exist.
    """
    suffix = _scene_suffix(path)
    return read_scene_parquet(path) if suffix == ".parquet" else read_ply(path)


def write_scene(path: str | os.PathLike, scene: GaussianScene) -> None:
    """Write `scene` atomically as `.parquet` (`write_scene_parquet`) or `.ply` (`write_ply`).

    A `sigmoid` scene is not converted silently: `.ply` raises (use `sigmoid_to_linear` first).

    Raises:
        ValueError: another suffix, or what the writer raises.
    """
    if _scene_suffix(path) == ".parquet":
        write_scene_parquet(path, scene)
    else:
        write_ply(path, scene)


def parquet_to_ply(parquet_path: str | os.PathLike, ply_path: str | os.PathLike,
                   num_directions: int = DEFAULT_NUM_DIRECTIONS) -> float | None:
    """Convert a trained-scene parquet file to an official PLY file (whatever the suffixes).

    A `sigmoid` scene (the original project's) is first converted by `sigmoid_to_linear` with
    `num_directions` view directions; a `linear` scene is written exactly.

    Returns:
        The fit's mean absolute colour error (0..1) for a converted sigmoid scene, else None.

    Raises:
        FileNotFoundError, ValueError: bad input (see `read_scene_parquet`); nothing is written.
        OSError: the PLY cannot be written.
    """
    scene = read_scene_parquet(parquet_path)
    fit_error = None
    if scene.color_activation == "sigmoid":
        scene, fit_error = sigmoid_to_linear(scene, num_directions)
    write_ply(ply_path, scene)
    return fit_error


def ply_to_parquet(ply_path: str | os.PathLike, parquet_path: str | os.PathLike) -> None:
    """Convert an official PLY file to a trained-scene parquet file (linear colour, exact).

    Raises:
        FileNotFoundError, ValueError: bad input (see `read_ply`); nothing is written.
        OSError: the parquet file cannot be written.
    """
    write_scene_parquet(parquet_path, read_ply(ply_path))


def _scene_suffix(path: str | os.PathLike) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SCENE_SUFFIXES:
        raise ValueError(f"{path}: unknown scene file suffix {Path(path).suffix!r}, expected "
                         f"one of {list(SCENE_SUFFIXES)}")
    return suffix
