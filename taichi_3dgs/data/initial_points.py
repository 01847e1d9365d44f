"""Initial points for datasets without a sparse reconstruction (Instant-NGP, Blender).

Either points on a mesh surface (area-weighted sampling with trimesh, as the original project's
`prepare_InstantNGP_with_mesh.py` did), or random points in the cameras' common view
volume: the part of space every camera sees, i.e. where an object captured from all around lies
(graphdeco's Blender loader instead fills a fixed cube [-1.3, 1.3]^3, which only fits
NeRF-synthetic scenes).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from taichi_3dgs.data.camera_checks import project_points
from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.data.point_cloud import PointCloud

BATCH_SIZE = 65536
PILOT_POINTS = 1000
PILOT_MARGIN = 0.1
# Give up when this many candidates in one box did not give enough points (a few seconds).
MAX_CANDIDATES = 1 << 24


MESH_EXTRA = "pip install 'taichi_3dgs[mesh]' (or pip install trimesh)"


def sample_mesh_surface(mesh_path: str | os.PathLike, num_points: int, seed: int = 0) -> PointCloud:
    """`num_points` points sampled uniformly (by area) on the surface of a triangle mesh.

    trimesh's `sample_surface` picks a triangle with probability proportional to its area, then a
    uniform point in it (two uniform numbers, reflected into the triangle when they sum past 1);
    vertex colours are interpolated with the point's barycentric coordinates (as open3d's
    `sample_points_uniformly`, which this replaced: the same distribution from a 5 MB package
    instead of 312 MB).

    Args:
        mesh_path: any mesh trimesh reads (OBJ, PLY, STL, OFF, GLB...), in the cameras' world frame;
            a file of several meshes is sampled as their union.
        num_points: number of points, >= 1.
        seed: random seed, for reproducible samples.

    Returns:
        PointCloud with xyz [num_points, 3] float32 and rgb [num_points, 3] uint8 from the vertex
        colours (None when the mesh has none).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: num_points < 1, the file holds no triangle, or trimesh is not installed (the
            message names the `mesh` extra).
    """
    mesh_path = Path(mesh_path)
    if num_points < 1:
        raise ValueError(f"number of mesh sample points is {num_points}; expected at least 1")
    if not mesh_path.is_file():
        raise FileNotFoundError(f"{mesh_path}: mesh file does not exist")
    try:
        import trimesh  # imported here: only the mesh sampler needs it (the optional `mesh` extra)
    except ImportError:
        raise ValueError(f"{mesh_path}: sampling a mesh needs the trimesh package: {MESH_EXTRA}") from None
    try:
        mesh = trimesh.load(mesh_path, force="mesh", process=False)
    except Exception as error:  # noqa: BLE001 (trimesh raises many types for an unreadable file)
        raise ValueError(f"{mesh_path}: trimesh cannot read it as a mesh ({error})") from None
    if len(getattr(mesh, "faces", ())) == 0:
        raise ValueError(f"{mesh_path}: no triangle in the file; expected a triangle mesh (OBJ, PLY, STL, ...)")
    xyz, face_index, barycentric = trimesh.sample.sample_surface(mesh, num_points, seed=seed,
                                                                 return_barycentric=True)
    rgb = None
    if mesh.visual.kind == "vertex":
        corner_colors = np.asarray(mesh.visual.vertex_colors, dtype=np.float64)[mesh.faces[face_index], :3]
        rgb = np.rint(np.einsum("nk,nkc->nc", barycentric, corner_colors)).clip(0, 255).astype(np.uint8)
    return PointCloud(xyz=np.asarray(xyz, dtype=np.float32), rgb=rgb)


def view_centre(records: Sequence[CameraRecord]) -> np.ndarray:
    """[3] float64 world point closest (least squares) to every camera's optical axis: the centre
    cameras around an object look at (instant-ngp's colmap2nerf.py; sum_i (I - d_i d_i^T) for unit
    axes d_i, solved against sum_i (I - d_i d_i^T) o_i for camera centres o_i).

    Raises:
        ValueError: the axes are (nearly) parallel (condition number above 1e6), so no point is
            closest to all of them.
    """
    system = np.zeros((3, 3))
    rhs = np.zeros(3)
    for record in records:
        axis = record.T_pointcloud_camera[:3, 2] / np.linalg.norm(record.T_pointcloud_camera[:3, 2])
        projector = np.eye(3) - np.outer(axis, axis)
        system += projector
        rhs += projector @ record.camera_center
    if np.linalg.cond(system) > 1e6:
        raise ValueError("all cameras look in the same direction, so their common view volume is unbounded; "
                         "expected cameras around an object, or pass a mesh / point cloud")
    return np.linalg.solve(system, rhs)


def _views(records: Sequence[CameraRecord]) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """(viewmat, K, width, height) of each camera, computed once (viewmat inverts a matrix)."""
    return [(record.viewmat, record.K, record.width, record.height) for record in records]


def _visible_in_all(points: np.ndarray, views: Sequence[tuple[np.ndarray, np.ndarray, int, int]]) -> np.ndarray:
    """[M] bool: which of `points` [M, 3] project inside every image, in front of every camera."""
    survivors = np.arange(len(points))
    for viewmat, K, width, height in views:
        # Most candidates fail within a few cameras; testing only the survivors keeps this cheap.
        u, v, depth = project_points(points[survivors], viewmat, K)
        survivors = survivors[(depth > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)]
    visible = np.zeros(len(points), dtype=bool)
    visible[survivors] = True
    return visible


def _sample_in_box(views: Sequence[tuple[np.ndarray, np.ndarray, int, int]], low: np.ndarray, high: np.ndarray, num_points: int,
                   rng: np.random.Generator) -> np.ndarray:
    accepted: list[np.ndarray] = []
    count = tried = 0
    while count < num_points:
        candidates = rng.uniform(low, high, size=(BATCH_SIZE, 3))
        inside = candidates[_visible_in_all(candidates, views)]
        accepted.append(inside)
        count += len(inside)
        tried += BATCH_SIZE
        if count < num_points and tried >= MAX_CANDIDATES:
            raise ValueError(f"only {count} of {tried} random points lie in the view of all {len(views)} "
                             f"cameras ({num_points} needed); expected cameras that share a view volume, "
                             "or pass a mesh")
    return np.concatenate(accepted)[:num_points]


def sample_view_volume(records: Sequence[CameraRecord], num_points: int, seed: int = 0) -> PointCloud:
    """`num_points` random points that every camera sees (inside all view frusta).

    Rejection sampling: a pilot of PILOT_POINTS points is drawn uniformly in the cube centred on
    the point closest to all optical axes, with half-size the median camera distance to it; the
    rest is drawn in the pilot's bounding box grown by PILOT_MARGIN of its size on each side (the
    view volume is an intersection of frusta, hence convex, so this box holds nearly all of it).
    A candidate is kept when it projects inside every image, in front of every camera.

    Args:
        records: the cameras (at least one); K is assumed zero-skew (CameraRecord's pinhole form).
        num_points: number of points, >= 1.
        seed: numpy random seed.

    Returns:
        PointCloud with xyz [num_points, 3] float32 and rgb None.

    Raises:
        ValueError: no camera, num_points < 1, parallel cameras, or a common view volume too small
            to sample (MAX_CANDIDATES candidates in one box gave too few points).
    """
    if not records:
        raise ValueError("no camera to sample a view volume from")
    if num_points < 1:
        raise ValueError(f"number of points is {num_points}; expected at least 1")
    centre = view_centre(records)
    half_size = float(np.median([np.linalg.norm(record.camera_center - centre) for record in records]))
    rng = np.random.default_rng(seed)
    views = _views(records)
    pilot = _sample_in_box(views, centre - half_size, centre + half_size, min(num_points, PILOT_POINTS), rng)
    if len(pilot) == num_points:
        return PointCloud(xyz=pilot)
    margin = PILOT_MARGIN * (pilot.max(axis=0) - pilot.min(axis=0))
    low = np.maximum(pilot.min(axis=0) - margin, centre - half_size)
    high = np.minimum(pilot.max(axis=0) + margin, centre + half_size)
    rest = _sample_in_box(views, low, high, num_points - len(pilot), rng)
    return PointCloud(xyz=np.concatenate([pilot, rest]))
