"""Input point clouds (`point_cloud.parquet`): the points a scene is initialised from.

docs/FORMATS.md "Point-cloud parquet", input side: columns `x, y, z` (float, world frame) required,
`r, g, b` (0..255) optional, any other column ignored (so a trained-scene file also reads as a
point cloud of its Gaussian centres).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from taichi_3dgs.atomic_io import atomic_path

XYZ_COLUMNS = ("x", "y", "z")
RGB_COLUMNS = ("r", "g", "b")


@dataclass(eq=False)
class PointCloud:
    """Points in the world frame, with optional 8-bit colours.

    Attributes:
        xyz: [N, 3] float32 positions (world units).
        rgb: [N, 3] uint8 colours (0..255), or None when the source has none.

    Raises:
        ValueError: xyz is not [N, 3], or rgb is not [N, 3] with the same N.
    """

    xyz: np.ndarray
    rgb: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.xyz = np.asarray(self.xyz, dtype=np.float32)
        if self.xyz.ndim != 2 or self.xyz.shape[1] != 3:
            raise ValueError(f"xyz has shape {self.xyz.shape}; expected [N, 3]")
        if self.rgb is not None:
            self.rgb = np.asarray(self.rgb, dtype=np.uint8)
            if self.rgb.shape != self.xyz.shape:
                raise ValueError(f"rgb has shape {self.rgb.shape}; expected {self.xyz.shape} like xyz")

    def __len__(self) -> int:
        return len(self.xyz)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PointCloud):
            return NotImplemented
        same_rgb = (self.rgb is None and other.rgb is None) or (
            self.rgb is not None and other.rgb is not None and np.array_equal(self.rgb, other.rgb))
        return same_rgb and np.array_equal(self.xyz, other.xyz)

    __hash__ = None  # type: ignore[assignment]  # holds arrays


def _column_values(path: Path, table: pa.Table, name: str) -> np.ndarray:
    column = table.column(name)
    if not (pa.types.is_floating(column.type) or pa.types.is_integer(column.type)):
        raise ValueError(f"{path}: column {name!r} has type {column.type}; expected numbers")
    if column.null_count:
        row = int(np.flatnonzero(column.is_null().to_numpy(zero_copy_only=False))[0])
        raise ValueError(f"{path}: column {name!r} row {row} is empty (null); expected a number")
    values = column.to_numpy().astype(np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"{path}: column {name!r} row {bad[0]} is {values[bad[0]]}; expected a finite number")
    return values


def read_point_cloud(path: str | os.PathLike) -> PointCloud:
    """Read an input point cloud from a parquet file.

    Returns:
        PointCloud with xyz [N, 3] float32 and rgb [N, 3] uint8 (rounded) or None.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: not a parquet file; a missing x/y/z column; only some of r, g, b; a
            non-numeric column; an empty or non-finite value (the row is named); a colour outside
            0..255 (the row is named).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: point cloud file does not exist")
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"{path}: not a readable parquet file ({error})") from None
    expected = "columns x, y, z (float) and optionally r, g, b (0..255)"
    missing = [name for name in XYZ_COLUMNS if name not in names]
    if missing:
        raise ValueError(f"{path}: missing column {missing[0]!r}; expected {expected}; found {names}")
    rgb_present = [name for name in RGB_COLUMNS if name in names]
    if rgb_present and len(rgb_present) != 3:
        raise ValueError(f"{path}: has colour column(s) {rgb_present} but not all of r, g, b; expected {expected}")
    table = pq.read_table(path, columns=list(XYZ_COLUMNS) + rgb_present)
    xyz = np.stack([_column_values(path, table, name) for name in XYZ_COLUMNS], axis=1)
    rgb = None
    if rgb_present:
        channels = []
        for name in RGB_COLUMNS:
            values = _column_values(path, table, name)
            bad = np.flatnonzero((values < 0) | (values > 255))
            if bad.size:
                raise ValueError(f"{path}: column {name!r} row {bad[0]} is {values[bad[0]]}; expected 0..255")
            channels.append(np.rint(values))
        rgb = np.stack(channels, axis=1).astype(np.uint8)
    return PointCloud(xyz=xyz.astype(np.float32), rgb=rgb)


def write_point_cloud(path: str | os.PathLike, cloud: PointCloud) -> None:
    """Write `cloud` as an input point-cloud parquet file, atomically.

    Columns x, y, z (float32) and, when `cloud.rgb` is set, r, g, b (uint8); no index column.

    Raises:
        OSError: the file cannot be written.
    """
    columns = {name: cloud.xyz[:, i] for i, name in enumerate(XYZ_COLUMNS)}
    if cloud.rgb is not None:
        columns.update({name: cloud.rgb[:, i] for i, name in enumerate(RGB_COLUMNS)})
    with atomic_path(path) as tmp:
        pd.DataFrame(columns).to_parquet(tmp, engine="pyarrow", index=False)
