"""Depth maps named by camera records (`depth_path`, docs/FORMATS.md "Camera JSON"): reading and resampling.

A depth map is a single-channel 16-bit PNG or a .npy array [H, W] at the resolution of its image
file. Its values divided by the record's `depth_scale` (1 when not given) are, by `depth_type`:

- "metric": camera z (along the optical axis, OpenCV camera frame) in world units, e.g. a
  depth sensor's millimetres with depth_scale 1000, or a synthetic scene's exact depth;
- "inverse": relative inverse depth (disparity) as monocular estimators such as Depth Anything
  give it, up to an unknown scale and shift.

A value of 0 or a non-finite one marks a pixel without depth; negative values are refused. Maps are
resampled with nearest neighbour: averaging would blend valid depths with the zeros of invalid
pixels, and across an occlusion edge give a depth on neither surface.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from taichi_3dgs.data.image_files import open_image

DEPTH_TYPES = ("metric", "inverse")
DEPTH_SUFFIXES = (".png", ".npy")
# How Pillow opens a single-channel 16-bit PNG ("I" in Pillow < 10).
_PNG_16BIT_MODES = ("I;16", "I;16B", "I;16L", "I")
_EXPECTED = "a single-channel 16-bit PNG or a .npy array [H, W] of numbers"


def _read_png(path: Path, what: str) -> np.ndarray:
    image = open_image(path, what, "depth_path", _EXPECTED)
    if image.mode not in _PNG_16BIT_MODES:
        raise ValueError(f"{what}: depth_path {path} is a PNG of mode {image.mode!r} (8-bit or colour); "
                         f"expected {_EXPECTED}")
    return np.asarray(image, dtype=np.float64)


def _read_npy(path: Path, what: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what}: depth_path {path} not found; expected {_EXPECTED}") from None
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{what}: depth_path {path}: cannot read: {exc}; expected {_EXPECTED}") from None
    if not isinstance(array, np.ndarray) or array.ndim != 2 or not (
            np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        shape = getattr(array, "shape", "?")
        raise ValueError(f"{what}: depth_path {path} holds an array of shape {shape} and dtype "
                         f"{getattr(array, 'dtype', '?')}; expected {_EXPECTED}")
    return array.astype(np.float64)


def read_depth_map(path: str | Path, depth_scale: float | None, what: str) -> np.ndarray:
    """Read a depth map file; the values in the units of its `depth_type` (module docstring).

    Args:
        path: a `.png` (single-channel 16-bit) or `.npy` (2-D integer or float array) file.
        depth_scale: the file's values are divided by this (> 0); None = 1.
        what: how error messages name the record (e.g. "train.json: record 3").

    Returns:
        float32 [H, W], the file's values / depth_scale, 0 where the file holds 0 or a non-finite
        value (no depth there).

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: another suffix, an undecodable file, an 8-bit or colour PNG, an array that is
            not 2-D numbers, or a negative value; the message names `what`, depth_path and the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".png":
        values = _read_png(path, what)
    elif suffix == ".npy":
        values = _read_npy(path, what)
    else:
        raise ValueError(f"{what}: depth_path {path} has suffix {path.suffix!r}; expected {_EXPECTED}")
    values = np.where(np.isfinite(values), values, 0.0) / (1.0 if depth_scale is None else depth_scale)
    if (values < 0).any():
        row, column = np.argwhere(values < 0)[0]
        raise ValueError(f"{what}: depth_path {path} has a negative value {values[row, column]:g} at row {row}, "
                         f"column {column}; expected depths >= 0 (0 = no depth)")
    return values.astype(np.float32)


def resize_depth_map(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`depth` float32 [H, W] resampled to size = (width, height) by nearest neighbour (module docstring)."""
    if (depth.shape[1], depth.shape[0]) == tuple(size):
        return depth
    image = Image.fromarray(np.ascontiguousarray(depth, dtype=np.float32))  # mode "F"
    # A copy: the array over Pillow's buffer is read-only, which torch.from_numpy warns about.
    return np.array(image.resize(size, Image.Resampling.NEAREST), dtype=np.float32)
