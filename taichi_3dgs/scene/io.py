"""Scene files by suffix, and the conversions behind `parquet_to_ply.py` / `ply_to_parquet.py`.

Lossless: `.parquet` (ours), `.ply` (official 3DGS). Quantised web formats, written and read:
`.compressed.ply` (PlayCanvas / SuperSplat), `.spz` (Niantic), `.sog` (PlayCanvas), `.glb` (glTF
2.0 with KHR_gaussian_splatting, float32) and `.splat` (antimatter15, DC colour only).
docs/FORMATS.md says what each keeps. A `.ply` file in PlayCanvas's compressed layout is read as
such whatever its name. `export_scene` turns any trained scene into a viewer file, converting
the original project's sigmoid colour to the official linear model on the way, and measures
what the format lost by reading the file back.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from taichi_3dgs.scene.color_conversion import DEFAULT_NUM_DIRECTIONS, sigmoid_to_linear
from taichi_3dgs.scene.compressed_ply import (is_compressed_ply, read_compressed_ply,
                                              write_compressed_ply)
from taichi_3dgs.scene.fidelity import round_trip_errors
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.glb import read_glb, write_glb
from taichi_3dgs.scene.parquet import read_scene_parquet, write_scene_parquet
from taichi_3dgs.scene.ply import read_ply, write_ply
from taichi_3dgs.scene.sog import read_sog, write_sog
from taichi_3dgs.scene.splat import read_splat, write_splat
from taichi_3dgs.scene.spz import read_spz, write_spz


def _read_any_ply(path: str | os.PathLike) -> GaussianScene:
    return read_compressed_ply(path) if is_compressed_ply(path) else read_ply(path)


_FORMATS: dict[str, tuple[Callable, Callable]] = {
    ".parquet": (read_scene_parquet, write_scene_parquet),
    ".ply": (_read_any_ply, write_ply),
    ".compressed.ply": (read_compressed_ply, write_compressed_ply),
    ".spz": (read_spz, write_spz),
    ".sog": (read_sog, write_sog),
    ".glb": (read_glb, write_glb),
    ".splat": (read_splat, write_splat),
}

SCENE_SUFFIXES = tuple(_FORMATS)
"""Suffixes of the scene files `read_scene` reads (and `write_scene` writes)."""

OUTPUT_SUFFIXES = SCENE_SUFFIXES
"""Suffixes of the scene files `write_scene` writes."""

LOSSLESS_SUFFIXES = (".parquet", ".ply")
"""Suffixes whose files hold a scene exactly (the others quantise, see docs/FORMATS.md)."""

EXPORT_SUFFIXES = tuple(suffix for suffix in SCENE_SUFFIXES if suffix != ".parquet")
"""Suffixes of the viewer formats `export_scene` writes (official linear colour)."""


@dataclass
class ExportResult:
    """What `export_scene` wrote and lost.

    Attributes:
        fit_error: the sigmoid-to-linear fit's mean absolute colour error (0..1), or None when
            the scene already had linear colour.
        num_bytes: size of the written file.
        num_gaussians: Gaussians written.
        errors: `fidelity.round_trip_errors` of the file read back against the written scene,
            or None for a lossless format (`.ply`, exact).
    """

    fit_error: float | None
    num_bytes: int
    num_gaussians: int
    errors: dict[str, tuple[float, float]] | None


def read_scene(path: str | os.PathLike) -> GaussianScene:
    """Read a trained scene from any of `SCENE_SUFFIXES` (case-insensitive; `.compressed.ply`
    or a `.ply` whose header has PlayCanvas's `chunk` element: `read_compressed_ply`).

    Raises:
        ValueError: another suffix, or what the reader raises (bad, truncated or foreign
            content, naming the file).
        FileNotFoundError: `path` does not exist.
    """
    return _FORMATS[scene_suffix(path, SCENE_SUFFIXES)][0](path)


def write_scene(path: str | os.PathLike, scene: GaussianScene) -> np.ndarray | None:
    """Write `scene` atomically in the format of `path`'s suffix (`OUTPUT_SUFFIXES`).

    A `sigmoid` scene is not converted silently: every format but `.parquet` raises (use
    `sigmoid_to_linear` first, or `export_scene`). A format that cannot record the scene's
    antialiased flag warns (`.splat`).

    Returns:
        [N] int64 file order (row i of the file is the scene's Gaussian `order[i]`) for the
        formats that reorder Gaussians (`.compressed.ply`, `.sog`: Morton order; `.splat`: by
        volume x opacity), else None.

    Raises:
        ValueError: another suffix (case-insensitive match), or what the writer raises.
    """
    return _FORMATS[scene_suffix(path, OUTPUT_SUFFIXES)][1](path, scene)


def export_scene(input_path: str | os.PathLike, output_path: str | os.PathLike,
                 num_directions: int = DEFAULT_NUM_DIRECTIONS) -> ExportResult:
    """Convert a trained scene (any readable format) to a viewer file (`EXPORT_SUFFIXES`).

    A `sigmoid` scene (the original project's) is first converted by `sigmoid_to_linear` with
    `num_directions` view directions; a `linear` scene is written as read (exactly for `.ply`).
    A quantised format's file is read back and compared with the written scene.

    Raises:
        ValueError: an unknown input or output suffix (checked before reading), or bad input
            (see `read_scene`); nothing is written.
        FileNotFoundError: `input_path` does not exist.
        OSError: the output cannot be written; the destination is left untouched.
    """
    suffix = scene_suffix(output_path, EXPORT_SUFFIXES)
    scene, fit_error = _linear_colour(read_scene(input_path), num_directions)
    _warn_if_empty(scene, input_path, output_path)
    order = _FORMATS[suffix][1](output_path, scene)
    errors = None
    if suffix not in LOSSLESS_SUFFIXES:
        errors = round_trip_errors(scene, read_scene(output_path), order)
    return ExportResult(fit_error, os.path.getsize(output_path), scene.num_gaussians, errors)


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
    """Convert a scene file (official PLY, or any of `SCENE_SUFFIXES`) to a trained-scene parquet
    file (linear colour; exact from `.ply`, the decoded values from a quantised format).

    Raises:
        FileNotFoundError, ValueError: bad input (see `read_scene`); nothing is written.
        OSError: the parquet file cannot be written.
    """
    scene = read_scene(ply_path)
    _warn_if_empty(scene, ply_path, parquet_path)
    write_scene_parquet(parquet_path, scene)


def _warn_if_empty(scene: GaussianScene, input_path: str | os.PathLike, output_path: str | os.PathLike) -> None:
    """Warn that a conversion writes an empty scene (legal, but seldom what was meant)."""
    if scene.num_gaussians == 0:
        warnings.warn(f"{input_path}: the scene has no Gaussians, so {output_path} holds an empty scene (every "
                      "render of it is the background)")


def _linear_colour(scene: GaussianScene, num_directions: int,
                   ) -> tuple[GaussianScene, float | None]:
    """`scene` in the official linear colour model, and the fit error if it had to be fitted."""
    if scene.color_activation == "sigmoid":
        return sigmoid_to_linear(scene, num_directions)
    return scene, None


def scene_suffix(path: str | os.PathLike, allowed: tuple[str, ...]) -> str:
    """The scene-format suffix of `path` (lower case; `.compressed.ply` counts as one suffix).

    Raises:
        ValueError: not one of `allowed`, naming the file.
    """
    name = Path(path).name.lower()
    suffix = ".compressed.ply" if name.endswith(".compressed.ply") else Path(name).suffix
    if suffix not in allowed:
        raise ValueError(f"{path}: unknown scene file suffix {Path(path).suffix!r}, expected "
                         f"one of {list(allowed)}")
    return suffix
