"""Scene files by suffix, and the conversions behind `parquet_to_ply.py` / `ply_to_parquet.py`.

Readable (lossless): `.parquet`, `.ply`. Also written: `.splat` (antimatter15's viewer format,
DC colour only). `export_scene` turns any trained scene into a viewer file (`.ply` / `.splat`),
converting the original project's sigmoid colour to the official linear model on the way.
"""
from __future__ import annotations

import os
from pathlib import Path

from taichi_3dgs.scene.color_conversion import DEFAULT_NUM_DIRECTIONS, sigmoid_to_linear
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.parquet import read_scene_parquet, write_scene_parquet
from taichi_3dgs.scene.ply import read_ply, write_ply
from taichi_3dgs.scene.splat import write_splat

SCENE_SUFFIXES = (".parquet", ".ply")
"""Suffixes of the scene files `read_scene` reads (lossless formats)."""

_WRITERS = {".parquet": write_scene_parquet, ".ply": write_ply, ".splat": write_splat}
OUTPUT_SUFFIXES = tuple(_WRITERS)
"""Suffixes of the scene files `write_scene` writes: the readable ones and `.splat` (lossy)."""

EXPORT_SUFFIXES = (".ply", ".splat")
"""Suffixes of the viewer formats `export_scene` writes (official linear colour)."""


def read_scene(path: str | os.PathLike) -> GaussianScene:
    """Read a trained scene from a `.parquet` (`read_scene_parquet`) or `.ply` (`read_ply`) file.

    Raises:
        ValueError: another suffix (case-insensitive match), or what the reader raises.
        FileNotFoundError: `path` does not exist.
    """
    suffix = _suffix(path, SCENE_SUFFIXES)
    return read_scene_parquet(path) if suffix == ".parquet" else read_ply(path)


def write_scene(path: str | os.PathLike, scene: GaussianScene) -> None:
    """Write `scene` atomically as `.parquet` (`write_scene_parquet`), `.ply` (`write_ply`) or
    `.splat` (`splat.write_splat`: DC colour only, quantised).

    A `sigmoid` scene is not converted silently: `.ply` and `.splat` raise (use
    `sigmoid_to_linear` first, or `export_scene`).

    Raises:
        ValueError: another suffix (case-insensitive match), or what the writer raises.
    """
    _WRITERS[_suffix(path, OUTPUT_SUFFIXES)](path, scene)


def export_scene(input_path: str | os.PathLike, output_path: str | os.PathLike,
                 num_directions: int = DEFAULT_NUM_DIRECTIONS) -> float | None:
    """Convert a trained scene (`.parquet` or `.ply`) to a viewer file, `.ply` or `.splat`.

    Formats by suffix (case-insensitive). A `sigmoid` scene (the original project's) is first
    converted by `sigmoid_to_linear` with `num_directions` view directions; a `linear` scene is
    written as read (exactly for `.ply`).

    Returns:
        The fit's mean absolute colour error (0..1) for a converted sigmoid scene, else None.

    Raises:
        ValueError: an unknown input or output suffix (checked before reading), or bad input
            (see `read_scene`); nothing is written.
        FileNotFoundError: `input_path` does not exist.
        OSError: the output cannot be written; the destination is left untouched.
    """
    write = _WRITERS[_suffix(output_path, EXPORT_SUFFIXES)]
    scene, fit_error = _linear_colour(read_scene(input_path), num_directions)
    write(output_path, scene)
    return fit_error


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
    scene, fit_error = _linear_colour(read_scene_parquet(parquet_path), num_directions)
    write_ply(ply_path, scene)
    return fit_error


def ply_to_parquet(ply_path: str | os.PathLike, parquet_path: str | os.PathLike) -> None:
    """Convert an official PLY file to a trained-scene parquet file (linear colour, exact).

    Raises:
        FileNotFoundError, ValueError: bad input (see `read_ply`); nothing is written.
        OSError: the parquet file cannot be written.
    """
    write_scene_parquet(parquet_path, read_ply(ply_path))


def _linear_colour(scene: GaussianScene, num_directions: int,
                   ) -> tuple[GaussianScene, float | None]:
    """`scene` in the official linear colour model, and the fit error if it had to be fitted."""
    if scene.color_activation == "sigmoid":
        return sigmoid_to_linear(scene, num_directions)
    return scene, None


def _suffix(path: str | os.PathLike, allowed: tuple[str, ...]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in allowed:
        raise ValueError(f"{path}: unknown scene file suffix {Path(path).suffix!r}, expected "
                         f"one of {list(allowed)}")
    return suffix
