"""exposure.json: the per-image affine colour transforms learnt with `exposure-compensation`
(docs/FORMATS.md), written by the trainer at each evaluation (`camera_optimization`).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from taichi_3dgs.atomic_io import write_text_atomic
from taichi_3dgs.data.cameras import read_json_file

EXPOSURE_JSON = "exposure.json"


def write_exposure_json(path: str | Path, transforms: dict[str, np.ndarray]) -> None:
    """Write {image name: [A | b] as 3 rows of 4 numbers} as JSON, atomically.

    A render of that image's camera is compensated as c -> A c + b (module docstring); numbers
    are written with full float64 precision, so `read_exposure_json` gives them back exactly.
    """
    lines = ",\n".join(f"  {json.dumps(name)}: {json.dumps(np.asarray(m, dtype=np.float64).tolist())}"
                       for name, m in transforms.items())
    write_text_atomic(path, f"{{\n{lines}\n}}\n" if transforms else "{}\n")


def read_exposure_json(path: str | Path) -> dict[str, np.ndarray]:
    """Read an exposure.json (`write_exposure_json`).

    Returns:
        {image name: float64 [3, 4] array [A | b]}, in file order.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not JSON, not an object, or a value that is not 3 rows of 4 finite numbers;
            the message names the file and the image.
    """
    path = Path(path)
    raw = read_json_file(path, "an object {image name: 3x4 affine colour transform}")
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: top level is a JSON {type(raw).__name__}; expected an object "
                         "{image name: 3x4 affine colour transform}")
    transforms = {}
    for name, value in raw.items():
        try:
            matrix = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            matrix = None
        if matrix is None or matrix.shape != (3, 4) or not np.isfinite(matrix).all():
            raise ValueError(f"{path}: image {name!r}: {value!r} is not a 3x4 affine colour transform; "
                             "expected 3 rows of 4 finite numbers [A | b]")
        transforms[name] = matrix
    return transforms
