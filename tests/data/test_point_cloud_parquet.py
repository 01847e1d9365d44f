"""Input point-cloud parquet files (FORMATS.md "Point-cloud parquet", input side)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from taichi_3dgs.data import PointCloud, read_point_cloud, write_point_cloud


def _cloud(with_rgb: bool) -> PointCloud:
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, size=(1000, 3)) if with_rgb else None
    return PointCloud(xyz=rng.normal(size=(1000, 3)) * 10, rgb=rgb)


@pytest.mark.parametrize("with_rgb", [True, False])
def test_written_cloud_reads_back_identical(tmp_path, with_rgb):
    cloud = _cloud(with_rgb)
    write_point_cloud(tmp_path / "points.parquet", cloud)
    assert read_point_cloud(tmp_path / "points.parquet") == cloud
    assert os.listdir(tmp_path) == ["points.parquet"]


def test_other_columns_are_ignored_and_integer_colours_accepted(tmp_path):
    frame = pd.DataFrame({"cov_q0": [1.0, 2.0], "x": [1.5, 2.5], "y": [0.0, 1.0], "z": [-1, 3],
                          "r": [0, 255], "g": [10, 20], "b": [30.0, 40.0], "alpha0": [0.1, 0.2]})
    frame.to_parquet(tmp_path / "scene.parquet")
    cloud = read_point_cloud(tmp_path / "scene.parquet")
    assert cloud.xyz.dtype == np.float32 and cloud.rgb.dtype == np.uint8
    assert np.array_equal(cloud.xyz, [[1.5, 0.0, -1.0], [2.5, 1.0, 3.0]])
    assert np.array_equal(cloud.rgb, [[0, 10, 30], [255, 20, 40]])


@pytest.mark.parametrize("columns, message", [
    ({"y": [0.0], "z": [0.0]}, r"missing column 'x'; expected columns x, y, z"),
    ({"x": [0.0], "y": [0.0], "z": [0.0], "r": [1], "g": [1]}, r"not all of r, g, b"),
    ({"x": [0.0, 1.0], "y": [0.0, np.inf], "z": [0.0, 0.0]}, r"column 'y' row 1 is inf; expected a finite number"),
    ({"x": [0.0, 1.0], "y": [0.0, 0.0], "z": [0.0, None]}, r"column 'z' row 1 is empty \(null\); expected a number"),
    ({"x": [0.0, 1.0], "y": [0.0, 0.0], "z": [0.0, 0.0], "r": [0, 256], "g": [0, 0], "b": [0, 0]},
     r"column 'r' row 1 is 256.0; expected 0..255"),
    ({"x": ["a"], "y": [0.0], "z": [0.0]}, r"column 'x' has type \w*string; expected numbers"),
])
def test_invalid_cloud_error_names_file_column_and_row(tmp_path, columns, message):
    path = tmp_path / "points.parquet"
    pd.DataFrame(columns).to_parquet(path)
    with pytest.raises(ValueError, match=message) as error:
        read_point_cloud(path)
    assert str(path) in str(error.value)


def test_a_file_that_is_not_parquet_is_rejected_naming_it(tmp_path):
    path = tmp_path / "points.parquet"
    path.write_text("x,y,z\n1,2,3\n")
    with pytest.raises(ValueError, match="not a readable parquet file"):
        read_point_cloud(path)


def test_colours_must_match_the_points():
    with pytest.raises(ValueError, match=r"rgb has shape \(2, 3\); expected \(3, 3\)"):
        PointCloud(xyz=np.zeros((3, 3)), rgb=np.zeros((2, 3)))
