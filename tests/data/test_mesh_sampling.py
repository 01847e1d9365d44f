"""taichi_3dgs.data.initial_points.sample_mesh_surface (trimesh, the optional `mesh` extra) on a
PLY mesh written with plyfile: points lie on the triangles, triangles are picked by area, points
are uniform inside them, vertex colours are interpolated barycentrically."""
from __future__ import annotations

import sys

import numpy as np
import pytest
from plyfile import PlyData, PlyElement

from taichi_3dgs.data.initial_points import sample_mesh_surface

# A unit right triangle (area 0.5) with red, green and blue corners, and one of area 1.5 (white).
VERTICES = [(0, 0, 0, 255, 0, 0), (1, 0, 0, 0, 255, 0), (0, 1, 0, 0, 0, 255),
            (2, 0, 0, 255, 255, 255), (5, 0, 0, 255, 255, 255), (2, 1, 0, 255, 255, 255)]
SAMPLES = 20_000


@pytest.fixture
def mesh_path(tmp_path):
    vertex = np.array(VERTICES, dtype=[("x", "f4"), ("y", "f4"), ("z", "f4"),
                                       ("red", "u1"), ("green", "u1"), ("blue", "u1")])
    face = np.array([([0, 1, 2],), ([3, 4, 5],)], dtype=[("vertex_indices", "i4", (3,))])
    path = tmp_path / "two_triangles.ply"
    PlyData([PlyElement.describe(vertex, "vertex"), PlyElement.describe(face, "face")], text=True).write(str(path))
    return path


def test_points_are_on_the_triangles_picked_by_area_and_uniform_inside(mesh_path):
    xyz = sample_mesh_surface(mesh_path, SAMPLES, seed=3).xyz.astype(np.float64)
    assert xyz.shape == (SAMPLES, 3) and np.all(xyz[:, 2] == 0)
    first = xyz[:, 0] <= 1
    x, y = xyz[first, 0], xyz[first, 1]
    assert np.all((x >= -1e-6) & (y >= -1e-6) & (x + y <= 1 + 1e-6))
    u, v = xyz[~first, 0] - 2, xyz[~first, 1]  # (2,0)-(5,0)-(2,1): u/3 + v <= 1
    assert np.all((u >= -1e-6) & (v >= -1e-6) & (u / 3 + v <= 1 + 1e-6))
    # area share 0.5 / 2.0; binomial standard deviation 0.003
    assert abs(first.mean() - 0.25) < 0.015
    # uniform in a triangle: the mean is the centroid, E[x^2] = 1/6 for the unit right triangle
    assert np.allclose([x.mean(), y.mean()], [1 / 3, 1 / 3], atol=0.01)
    assert abs((x ** 2).mean() - 1 / 6) < 0.01


def test_vertex_colours_are_interpolated_at_each_point(mesh_path):
    cloud = sample_mesh_surface(mesh_path, 2000, seed=0)
    first = cloud.xyz[:, 0] <= 1
    x, y = cloud.xyz[first, 0].astype(np.float64), cloud.xyz[first, 1].astype(np.float64)
    expected = 255 * np.stack([1 - x - y, x, y], axis=1)
    assert np.abs(cloud.rgb[first].astype(np.float64) - expected).max() <= 1.0
    assert np.all(cloud.rgb[~first] == 255)


def test_the_same_seed_gives_the_same_points(mesh_path):
    assert np.array_equal(sample_mesh_surface(mesh_path, 50, seed=7).xyz, sample_mesh_surface(mesh_path, 50, seed=7).xyz)


def test_without_trimesh_the_error_names_the_extra(mesh_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "trimesh", None)  # import trimesh raises ImportError
    with pytest.raises(ValueError, match=r"two_triangles.ply: sampling a mesh needs the trimesh package: "
                                         r"pip install 'taichi_3dgs\[mesh\]'"):
        sample_mesh_surface(mesh_path, 10)


def test_a_file_without_triangles_is_refused(tmp_path):
    path = tmp_path / "points.obj"
    path.write_text("v 0 0 0\nv 1 0 0\n")
    with pytest.raises(ValueError, match="points.obj: "):
        sample_mesh_surface(path, 10)
