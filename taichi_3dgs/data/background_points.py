"""Initial points added where the point cloud is thin, coloured from the training images.

A structure-from-motion cloud covers what many cameras saw with texture: the object of a capture,
hardly the walls, floor or sky behind it, and Gaussians grown from the cloud by densification
rarely reach them, so those areas stay blurred. The remedies, all seeded and all drawn from the
training views (cameras with their images as the trainer loaded them):

- `sample_view_frusta`: points uniform in the union of the training cameras' view frusta, each
  frustum cut to the depths at which its camera sees the cloud (near and far quantiles of the
  depths of the cloud's points in its image), coloured by the pixel the point was drawn through;
- `sample_far_shell`: points uniform on a sphere around the scene, far behind everything (a
  background of last resort, as the skybox of graphdeco's hierarchical 3DGS, Kerbl et al. 2024:
  sky-blue points on the upper 70 % of a sphere at 10 x the half-diagonal of the cloud's bounding
  box; here the whole sphere, about the cameras' centroid, at a multiple of the cameras' extent),
  coloured by the mean of the pixels they project to, grey where no camera sees them;
- `sample_beyond_cloud`: points on random training pixel rays, at depths uniform in inverse depth
  from the near depth at which the camera sees the cloud to a multiple of its far depth, coloured
  by the pixel: the floor, furniture and walls behind an object capture, which the cloud of the
  object misses and the frusta cut to the cloud's depths stop short of (issue 22: on an object on a
  table, 17.7 -> 18.4 dB at 1,500 steps);
- the far shell sized from the cameras (`camera_shell_geometry`): about the point the cameras look
  at, at a multiple of their distance from it, the room around an object rather than a sky.

`background_points` draws them for the trainer (`initial-points` in the YAML config).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from taichi_3dgs.data.camera_checks import project_points
from taichi_3dgs.data.initial_points import view_centre
from taichi_3dgs.data.point_cloud import PointCloud
from taichi_3dgs.data.views import View

# Independent random streams of one seed (numpy SeedSequence entropy [seed, stream]); the point
# cloud's own random colours use the bare seed.
VIEW_VOLUME_STREAM = 1
FAR_SHELL_STREAM = 2
BEYOND_CLOUD_STREAM = 3
CAMERA_SHELL_STREAM = 4
CANDIDATES_PER_BATCH = 1 << 16
GREY = 0.5  # colour of shell points no camera sees


def _cameras(views: Sequence[View]) -> list[tuple[np.ndarray, np.ndarray, int, int]]:
    """(viewmat [4, 4], K [3, 3], width, height) in float64 at each view's image size."""
    return [(view.camera.viewmat, view.camera.K, view.width, view.height) for view in views]


def _in_image(u: np.ndarray, v: np.ndarray, width: int, height: int) -> np.ndarray:
    return (u >= 0) & (u < width) & (v >= 0) & (v < height)


def _to_uint8(colors: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(colors, 0.0, 1.0) * 255.0).astype(np.uint8)


def _on_rays(camera_to_world: np.ndarray, K: np.ndarray, pixel: np.ndarray, depth: np.ndarray) -> np.ndarray:
    """[M, 3] world points at camera depth `depth` [M] on the rays through `pixel` [M, 2] (x, y)
    of cameras with poses `camera_to_world` [M, 4, 4] and zero-skew intrinsics `K` [M, 3, 3]."""
    in_camera = np.stack([(pixel[:, 0] - K[:, 0, 2]) / K[:, 0, 0] * depth,
                          (pixel[:, 1] - K[:, 1, 2]) / K[:, 1, 1] * depth, depth], axis=1)
    return np.einsum("mij,mj->mi", camera_to_world[:, :3, :3], in_camera) + camera_to_world[:, :3, 3]


def _pixel_colors(views: Sequence[View], view: np.ndarray, pixel: np.ndarray, background: torch.Tensor) -> np.ndarray:
    """[M, 3] float64 colours of the pixels containing `pixel` [M, 2] (x, y) of views `view` [M]."""
    colors = np.empty((len(view), 3))
    for index in np.unique(view):
        rows = view == index
        cols_rows = np.minimum(np.floor(pixel[rows]).astype(np.int64), [views[index].width - 1, views[index].height - 1])
        colors[rows] = views[index].colors_at(torch.from_numpy(cols_rows[:, 1]), torch.from_numpy(cols_rows[:, 0]),
                                              background).cpu().numpy()
    return colors


def frustum_depth_bounds(views: Sequence[View], cloud_xyz: np.ndarray,
                         quantiles: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Per view, (near, far): the `quantiles` of the depths of the cloud's points it sees.

    A point is seen when it lies in front of the camera and projects inside its image. A view that
    sees none takes the quantiles of all views' depths together.

    Args:
        views: the training views (camera at the cached image's size).
        cloud_xyz: [N, 3] world-frame points.
        quantiles: (q_near, q_far) with 0 <= q_near < q_far <= 1.

    Returns:
        near, far: [V] float64 camera depths (world units), 0 < near <= far.

    Raises:
        ValueError: no view sees any point of the cloud (a cloud in another frame than the cameras).
    """
    seen = []
    for viewmat, K, width, height in _cameras(views):
        u, v, depth = project_points(np.asarray(cloud_xyz, dtype=np.float64), viewmat, K)
        seen.append(depth[(depth > 0) & _in_image(u, v, width, height)])
    pooled = np.concatenate(seen)
    if pooled.size == 0:
        raise ValueError(f"none of the {len(cloud_xyz)} points of the point cloud lies in front of a training camera "
                         "and inside its image; expected a point cloud in the cameras' world frame")
    bounds = np.array([np.quantile(depths if depths.size else pooled, quantiles) for depths in seen])
    return bounds[:, 0], bounds[:, 1]


def sample_view_frusta(
    views: Sequence[View],
    cloud_xyz: np.ndarray,
    num_points: int,
    depth_quantiles: tuple[float, float],
    background: torch.Tensor,
    seed: int,
) -> PointCloud:
    """`num_points` points uniform in the union of the views' frusta cut to their depth bounds.

    Frustum i is the set of points that project inside image i at a camera depth in
    [near_i, far_i] (`frustum_depth_bounds`); its volume is (W H / (fx fy)) (far^3 - near^3) / 3.
    A candidate is drawn from frustum i with probability proportional to that volume, uniformly in
    it (pixel uniform in the image, depth with density proportional to z^2 by inverse transform),
    and kept with probability 1 / (number of frusta that contain it): rejection that makes the
    density uniform over the union, so the space many cameras share (the object, which the cloud
    covers) is not sampled more densely than the periphery one camera sees. Every point is seen by
    the camera it was drawn from, and takes the colour of the pixel it was drawn through.

    Args:
        views: the training views, images as the trainer loaded them.
        cloud_xyz: [N, 3] world-frame points of the point cloud (for the depth bounds).
        num_points: number of points, >= 1.
        depth_quantiles: (q_near, q_far), 0 <= q_near < q_far <= 1.
        background: float32 [3] colour RGBA images are composited over (as the training targets).
        seed: non-negative seed (stream VIEW_VOLUME_STREAM).

    Returns:
        PointCloud: xyz [num_points, 3] float32, rgb [num_points, 3] uint8.

    Raises:
        ValueError: no view, num_points < 1, no view sees the cloud, or every frustum is empty
            (near = far in every view).
    """
    if not views:
        raise ValueError("no training view to sample the view volume of")
    if num_points < 1:
        raise ValueError(f"number of view-volume points is {num_points}; expected at least 1")
    cameras = _cameras(views)
    near, far = frustum_depth_bounds(views, cloud_xyz, depth_quantiles)
    K = np.stack([camera[1] for camera in cameras])
    sizes = np.array([(width, height) for _, _, width, height in cameras], dtype=np.float64)
    volumes = sizes[:, 0] * sizes[:, 1] / (K[:, 0, 0] * K[:, 1, 1]) * (far**3 - near**3) / 3.0
    if not volumes.sum() > 0:
        raise ValueError("every training camera sees the point cloud at a single depth, so the view volume between "
                         "its near and far depths is empty; expected a cloud spread in depth")
    camera_to_world = np.stack([np.linalg.inv(camera[0]) for camera in cameras])
    rng = np.random.default_rng([seed, VIEW_VOLUME_STREAM])
    kept_xyz, kept_view, kept_pixel = [], [], []
    count = 0
    while count < num_points:
        view = rng.choice(len(cameras), size=CANDIDATES_PER_BATCH, p=volumes / volumes.sum())
        draws = rng.random((CANDIDATES_PER_BATCH, 4))  # x, y in the image, depth, acceptance
        pixel = draws[:, :2] * sizes[view]
        depth = np.cbrt(near[view] ** 3 + draws[:, 2] * (far[view] ** 3 - near[view] ** 3))
        xyz = _on_rays(camera_to_world[view], K[view], pixel, depth)
        covering = np.ones(CANDIDATES_PER_BATCH)  # its own frustum, whatever rounding says
        for index, (viewmat, K_i, width, height) in enumerate(cameras):
            u, v, z = project_points(xyz, viewmat, K_i)
            covering += (view != index) & (z >= near[index]) & (z <= far[index]) & _in_image(u, v, width, height)
        keep = draws[:, 3] * covering < 1.0
        kept_xyz.append(xyz[keep])
        kept_view.append(view[keep])
        kept_pixel.append(pixel[keep])
        count += int(keep.sum())
    xyz = np.concatenate(kept_xyz)[:num_points]
    view = np.concatenate(kept_view)[:num_points]
    pixel = np.concatenate(kept_pixel)[:num_points]
    return PointCloud(xyz=xyz, rgb=_to_uint8(_pixel_colors(views, view, pixel, background)))


def sample_beyond_cloud(
    views: Sequence[View],
    cloud_xyz: np.ndarray,
    num_points: int,
    depth_quantiles: tuple[float, float],
    far_factor: float,
    background: torch.Tensor,
    seed: int,
) -> PointCloud:
    """`num_points` points on random training pixel rays, reaching past the cloud's far depth.

    Every pixel of every view is equally likely (a view with probability proportional to its
    pixel count, then a position uniform in its image); the point's camera depth is uniform in
    inverse depth 1/z between 1/near_i and 1/(far_factor far_i), where (near_i, far_i) are the
    `depth_quantiles` of the depths at which view i sees the cloud (`frustum_depth_bounds`), so
    the points thin out with depth as a pixel's footprint grows (the disparity sampling of NeRF's
    forward-facing scenes, Mildenhall et al. 2020, sec. 5.3). Each point takes the colour of the
    pixel it was drawn through: whatever lies behind the object along that ray starts covered.

    Args:
        views: the training views, images as the trainer loaded them.
        cloud_xyz: [N, 3] world-frame points of the point cloud (for the depth bounds).
        num_points: number of points, >= 1.
        depth_quantiles: (q_near, q_far), 0 <= q_near < q_far <= 1.
        far_factor: the farthest depth in units of each view's far quantile, >= 1.
        background: float32 [3] colour RGBA images are composited over (as the training targets).
        seed: non-negative seed (stream BEYOND_CLOUD_STREAM).

    Returns:
        PointCloud: xyz [num_points, 3] float32, rgb [num_points, 3] uint8.

    Raises:
        ValueError: no view, num_points < 1, far_factor < 1, or no view sees the cloud.
    """
    if not views:
        raise ValueError("no training view to sample rays of")
    if num_points < 1:
        raise ValueError(f"number of beyond-cloud points is {num_points}; expected at least 1")
    if not far_factor >= 1.0:
        raise ValueError(f"beyond-cloud far factor is {far_factor}; expected at least 1 (past the cloud's far depth)")
    near, far = frustum_depth_bounds(views, cloud_xyz, depth_quantiles)
    cameras = _cameras(views)
    sizes = np.array([(width, height) for _, _, width, height in cameras], dtype=np.float64)
    rng = np.random.default_rng([seed, BEYOND_CLOUD_STREAM])
    view = rng.choice(len(views), size=num_points, p=sizes.prod(axis=1) / sizes.prod(axis=1).sum())
    draws = rng.random((num_points, 3))  # x, y in the image, inverse depth
    pixel = draws[:, :2] * sizes[view]
    depth = 1.0 / (1.0 / near[view] + draws[:, 2] * (1.0 / (far_factor * far[view]) - 1.0 / near[view]))
    camera_to_world = np.stack([np.linalg.inv(camera[0]) for camera in cameras])
    K = np.stack([camera[1] for camera in cameras])
    xyz = _on_rays(camera_to_world[view], K[view], pixel, depth)
    return PointCloud(xyz=xyz, rgb=_to_uint8(_pixel_colors(views, view, pixel, background)))


def sample_far_shell(
    views: Sequence[View],
    centre: np.ndarray,
    radius: float,
    num_points: int,
    background: torch.Tensor,
    seed: int,
    stream: int = FAR_SHELL_STREAM,
) -> PointCloud:
    """`num_points` points uniform on the sphere of `radius` about `centre`.

    Directions are normalised standard normal 3-vectors (uniform on the sphere). A point's colour
    is the mean of the pixels it projects to in the views that see it (in front of the camera,
    inside the image; occlusion is not tested), GREY where none does.

    Args:
        views: the training views, images as the trainer loaded them.
        centre: [3] world-frame centre. radius: world units, > 0.
        num_points: number of points, >= 1.
        background: float32 [3] colour RGBA images are composited over.
        seed: non-negative seed. stream: its random stream (CAMERA_SHELL_STREAM for the shell of
            `camera_shell_geometry`, so that both shells of one seed differ).

    Returns:
        PointCloud: xyz [num_points, 3] float32, rgb [num_points, 3] uint8.

    Raises:
        ValueError: num_points < 1 or radius <= 0.
    """
    if num_points < 1:
        raise ValueError(f"number of far-shell points is {num_points}; expected at least 1")
    if not radius > 0:
        raise ValueError(f"far-shell radius is {radius}; expected a positive distance")
    rng = np.random.default_rng([seed, stream])
    directions = rng.standard_normal((num_points, 3))
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    xyz = np.asarray(centre, dtype=np.float64) + radius * directions
    color_sum = np.zeros((num_points, 3))
    seen_by = np.zeros(num_points)
    for view, (viewmat, K, width, height) in zip(views, _cameras(views)):
        u, v, depth = project_points(xyz, viewmat, K)
        seen = (depth > 0) & _in_image(u, v, width, height)
        if seen.any():
            cols, rows = (torch.from_numpy(np.floor(w[seen]).astype(np.int64)) for w in (u, v))
            color_sum[seen] += view.colors_at(rows, cols, background).cpu().numpy()
            seen_by += seen
    colors = np.where(seen_by[:, None] > 0, color_sum / np.maximum(seen_by, 1)[:, None], GREY)
    return PointCloud(xyz=xyz, rgb=_to_uint8(colors))


def camera_shell_geometry(views: Sequence[View], radius_factor: float) -> tuple[np.ndarray, float]:
    """(centre [3] float64, radius) of a background shell sized from the cameras: centred on the
    point the cameras look at (`initial_points.view_centre`), with radius `radius_factor` x the
    median distance of the camera centres from it (world units).

    Raises:
        ValueError: the cameras' optical axes are (nearly) parallel (a forward-facing capture has
            no common look-at centre), or radius_factor <= 0.
    """
    if not radius_factor > 0:
        raise ValueError(f"camera-shell radius factor is {radius_factor}; expected a positive number")
    records = [view.camera for view in views]
    try:
        centre = view_centre(records)
    except ValueError:
        raise ValueError("the training cameras' optical axes are (nearly) parallel, so they have no common centre "
                         "to size a camera shell from; expected cameras around an object, or use far-shell") from None
    distance = float(np.median([np.linalg.norm(record.camera_center - centre) for record in records]))
    return centre, radius_factor * distance


def background_points(
    cloud: PointCloud,
    views: Sequence[View],
    *,
    num_view_volume: int,
    depth_quantiles: tuple[float, float],
    num_far_shell: int,
    shell_centre: np.ndarray,
    shell_radius: float,
    background: torch.Tensor,
    seed: int,
    num_beyond_cloud: int,
    beyond_cloud_depth_quantiles: tuple[float, float],
    beyond_cloud_far_factor: float,
    num_camera_shell: int,
    camera_shell_radius: float,
) -> PointCloud:
    """The points to add to `cloud`: `sample_view_frusta`, `sample_far_shell`,
    `sample_beyond_cloud` (with its quantiles and far factor), then a far shell of
    `camera_shell_geometry(views, camera_shell_radius)` (any count may be 0), in one PointCloud
    with colours (possibly empty: xyz [0, 3]).

    Raises:
        ValueError: as the samplers and `camera_shell_geometry`, or a negative count.
    """
    counts = {"view-volume": num_view_volume, "far-shell": num_far_shell, "beyond-cloud": num_beyond_cloud,
              "camera-shell": num_camera_shell}
    if min(counts.values()) < 0:
        raise ValueError(f"point counts must be >= 0, got {', '.join(f'{n} {k}' for k, n in counts.items())} points")
    parts = [PointCloud(xyz=np.zeros((0, 3)), rgb=np.zeros((0, 3), dtype=np.uint8))]
    if num_view_volume:
        parts.append(sample_view_frusta(views, cloud.xyz, num_view_volume, depth_quantiles, background, seed))
    if num_far_shell:
        parts.append(sample_far_shell(views, shell_centre, shell_radius, num_far_shell, background, seed))
    if num_beyond_cloud:
        parts.append(sample_beyond_cloud(views, cloud.xyz, num_beyond_cloud, beyond_cloud_depth_quantiles,
                                         beyond_cloud_far_factor, background, seed))
    if num_camera_shell:
        centre, radius = camera_shell_geometry(views, camera_shell_radius)
        parts.append(sample_far_shell(views, centre, radius, num_camera_shell, background, seed, CAMERA_SHELL_STREAM))
    return PointCloud(xyz=np.concatenate([p.xyz for p in parts]), rgb=np.concatenate([p.rgb for p in parts]))
