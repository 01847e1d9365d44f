"""Initial points where the cloud is thin (taichi_3dgs.data.background_points), on synthetic
cameras whose images encode what a point must get: the pixel (red = 4 x column, green = 4 x row)
and the camera (blue), so each colour can be checked against an independent projection."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from taichi_3dgs.data.background_points import (
    CAMERA_SHELL_STREAM, GREY, background_points, camera_shell_geometry, frustum_depth_bounds, sample_beyond_cloud,
    sample_far_shell, sample_view_frusta,
)
from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.data.point_cloud import PointCloud
from taichi_3dgs.data.views import View

SIZE = 64  # image side, pixels
FOCAL = 48.0  # px: tan(half fov) = 32 / 48


def _look_at(eye, target=(0.0, 0.0, 0.0), up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world [4, 4] of an OpenCV camera at `eye` looking at `target` (world up = +z)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = (target - eye) / np.linalg.norm(target - eye)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, :3] = np.stack([x, y, z], axis=1)
    pose[:3, 3] = eye
    return pose


def _pixel_code_image(camera_index: int) -> np.ndarray:
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    return np.stack([4 * cols, 4 * rows, np.full_like(rows, 40 * camera_index)], axis=-1).astype(np.uint8)


def _view(pose: np.ndarray, image: np.ndarray) -> View:
    K = np.array([[FOCAL, 0.0, SIZE / 2], [0.0, FOCAL, SIZE / 2], [0.0, 0.0, 1.0]])
    record = CameraRecord("unused.png", K, pose, SIZE, SIZE)
    return View("unused.png", record, torch.from_numpy(image), None,
                torch.tensor(record.viewmat, dtype=torch.float32), torch.tensor(K, dtype=torch.float32))


def _ring_views(count: int = 3) -> list[View]:
    angles = 2 * np.pi * np.arange(count) / count
    return [_view(_look_at((4 * np.cos(a), 4 * np.sin(a), 1.0)), _pixel_code_image(i)) for i, a in enumerate(angles)]


def _ball_cloud(n: int = 2000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    points = rng.standard_normal((n, 3))
    return points / np.linalg.norm(points, axis=1, keepdims=True) * rng.random((n, 1)) ** (1 / 3)


def _project(points: np.ndarray, view: View) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(u, v, depth) of world points in `view`, from the camera-to-world pose (independent of
    the module's projection, which uses the inverted viewmat)."""
    pose = view.camera.T_pointcloud_camera
    camera = (points.astype(np.float64) - pose[:3, 3]) @ pose[:3, :3]
    depth = camera[:, 2]
    return FOCAL * camera[:, 0] / depth + SIZE / 2, FOCAL * camera[:, 1] / depth + SIZE / 2, depth


def _inside(u, v, depth, near=0.0, far=np.inf) -> np.ndarray:
    return (depth > 0) & (depth >= near) & (depth <= far) & (u >= 0) & (u < SIZE) & (v >= 0) & (v < SIZE)


def _reference_bounds(views, cloud, quantiles) -> list[tuple[float, float]]:
    bounds = []
    for view in views:
        u, v, depth = _project(cloud, view)
        bounds.append(tuple(np.quantile(depth[_inside(u, v, depth)], quantiles)))
    return bounds


BLACK = torch.zeros(3)


def test_depth_bounds_are_quantiles_of_the_depths_each_camera_sees():
    views, cloud = _ring_views(), _ball_cloud()
    near, far = frustum_depth_bounds(views, cloud, (0.1, 0.9))
    np.testing.assert_allclose(np.stack([near, far], axis=1), _reference_bounds(views, cloud, (0.1, 0.9)), rtol=1e-9)
    assert (near > 2.5).all() and (far < 5.5).all()  # a unit ball 4.1 from each camera


def test_view_volume_points_lie_in_a_frustum_between_its_depth_bounds():
    views, cloud = _ring_views(), _ball_cloud()
    points = sample_view_frusta(views, cloud, 3000, (0.05, 0.95), BLACK, seed=0)
    assert points.xyz.shape == (3000, 3) and points.xyz.dtype == np.float32
    inside_any = np.zeros(3000, dtype=bool)
    for view, (near, far) in zip(views, _reference_bounds(views, cloud, (0.05, 0.95))):
        u, v, depth = _project(points.xyz, view)
        inside_any |= _inside(u, v, depth, near * (1 - 1e-6), far * (1 + 1e-6))
    assert inside_any.all()


def test_view_volume_points_take_the_colour_of_a_pixel_of_the_camera_they_came_from():
    views, cloud = _ring_views(), _ball_cloud()
    points = sample_view_frusta(views, cloud, 2000, (0.05, 0.95), BLACK, seed=1)
    camera = points.rgb[:, 2] // 40
    assert set(np.unique(camera)) == {0, 1, 2}  # drawn from every camera
    column_error, row_error = np.empty(2000), np.empty(2000)
    for index, view in enumerate(views):
        rows = camera == index
        u, v, _ = _project(points.xyz[rows], view)
        column_error[rows] = points.rgb[rows, 0] / 4 - np.floor(u)
        row_error[rows] = points.rgb[rows, 1] / 4 - np.floor(v)
    # The point is stored in float32: a pixel boundary may move by a rounding error, not more.
    assert np.abs(column_error).max() <= 1 and np.abs(row_error).max() <= 1
    assert (column_error == 0).mean() > 0.99 and (row_error == 0).mean() > 0.99


def _side_by_side_views() -> list[View]:
    # Two cameras 1.5 apart looking along +y: at every depth their frusta overlap over half of each.
    return [_view(_look_at((x, 0.0, 0.0), (x, 1.0, 0.0)), _pixel_code_image(i)) for i, x in enumerate((0.0, 1.5))]


def test_view_volume_density_is_uniform_over_the_union_of_frusta():
    views = _side_by_side_views()
    rng = np.random.default_rng(5)
    # A slab of points at depths 2..6 in front of both cameras: both get bounds about (2, 6).
    cloud = np.stack([rng.uniform(-4, 6, 20000), rng.uniform(2, 6, 20000), rng.uniform(-3, 3, 20000)], axis=1)
    bounds = _reference_bounds(views, cloud, (0.0, 1.0))
    points = sample_view_frusta(views, cloud, 4000, (0.0, 1.0), BLACK, seed=2)

    def in_frustum(p, i):
        return _inside(*_project(p, views[i]), *bounds[i])

    # Independent Monte Carlo over a box holding both frusta: the share of the union's volume that
    # both frusta cover.
    box = rng.uniform([-5, 0, -5], [7, 7, 5], size=(400_000, 3))
    a, b = in_frustum(box, 0), in_frustum(box, 1)
    shared_volume = (a & b).sum() / (a | b).sum()
    shared_points = (in_frustum(points.xyz, 0) & in_frustum(points.xyz, 1)).mean()
    sigma = np.sqrt(shared_volume * (1 - shared_volume) / 4000)
    assert abs(shared_points - shared_volume) < 4 * sigma + 0.005
    # Drawing from a frustum without the 1 / coverage rejection would put 2 x shared / (1 + shared)
    # of the points there: far from the uniform share, so the test tells them apart.
    assert 2 * shared_volume / (1 + shared_volume) - shared_volume > 10 * sigma


def test_view_volume_points_depend_on_the_seed_only():
    views, cloud = _ring_views(), _ball_cloud()
    first = sample_view_frusta(views, cloud, 500, (0.05, 0.95), BLACK, seed=3)
    again = sample_view_frusta(views, cloud, 500, (0.05, 0.95), BLACK, seed=3)
    other = sample_view_frusta(views, cloud, 500, (0.05, 0.95), BLACK, seed=4)
    assert first == again
    assert not np.allclose(first.xyz, other.xyz)


def test_transparent_pixels_give_the_background_colour():
    transparent = np.zeros((SIZE, SIZE, 4), dtype=np.uint8)
    views = [_view(view.camera.T_pointcloud_camera, transparent) for view in _ring_views()]
    points = sample_view_frusta(views, _ball_cloud(), 200, (0.05, 0.95), torch.tensor([1.0, 0.5, 0.0]), seed=0)
    assert (points.rgb == np.array([255, 128, 0], dtype=np.uint8)).all()


def test_a_cloud_no_camera_sees_is_refused():
    behind_everyone = _ball_cloud() * 0.1 + np.array([0.0, 0.0, 50.0])
    with pytest.raises(ValueError, match="none of the 2000 points.*in front of a training camera"):
        sample_view_frusta(_ring_views(), behind_everyone, 10, (0.05, 0.95), BLACK, seed=0)


def _flat_views() -> list[View]:
    # Constant-colour images: camera 0 red 200, camera 1 blue 100.
    colours = [(200, 0, 0), (0, 0, 100)]
    return [_view(_look_at((4 * np.cos(a), 4 * np.sin(a), 0.0)), np.full((SIZE, SIZE, 3), c, dtype=np.uint8))
            for a, c in zip((0.0, 0.5), colours)]


def test_far_shell_points_lie_on_the_sphere_with_the_mean_colour_of_the_cameras_that_see_them():
    views = _flat_views()
    centre = np.array([0.5, -0.25, 1.0])
    shell = sample_far_shell(views, centre, 40.0, 4000, BLACK, seed=0)
    np.testing.assert_allclose(np.linalg.norm(shell.xyz - centre, axis=1), 40.0, rtol=1e-6)
    seen = np.stack([_inside(*_project(shell.xyz, view)) for view in views], axis=1)
    expected = np.full((4000, 3), 255 * GREY)
    expected[seen[:, 0] & ~seen[:, 1]] = (200, 0, 0)
    expected[~seen[:, 0] & seen[:, 1]] = (0, 0, 100)
    expected[seen[:, 0] & seen[:, 1]] = (100, 0, 50)
    assert seen[:, 0].sum() > 50 and (seen[:, 0] & seen[:, 1]).sum() > 20 and (~seen.any(axis=1)).sum() > 2000
    np.testing.assert_allclose(shell.rgb, expected, atol=0.5)
    # Uniform on the sphere: each coordinate of the direction is uniform in [-1, 1] (Archimedes).
    z = (shell.xyz[:, 2] - centre[2]) / 40.0
    assert abs((z > 0.5).mean() - 0.25) < 0.03 and abs((z < -0.5).mean() - 0.25) < 0.03


def test_background_points_concatenate_both_kinds_and_nothing_when_both_counts_are_zero():
    views, cloud = _ring_views(), PointCloud(_ball_cloud())
    common = dict(depth_quantiles=(0.05, 0.95), shell_centre=np.zeros(3), shell_radius=30.0, background=BLACK, seed=0,
                  num_beyond_cloud=0, beyond_cloud_depth_quantiles=(0.05, 0.95), beyond_cloud_far_factor=2.0,
                  num_camera_shell=0, camera_shell_radius=2.5)
    both = background_points(cloud, views, num_view_volume=100, num_far_shell=50, **common)
    assert both.xyz.shape == (150, 3) and both.rgb.shape == (150, 3)
    volume = sample_view_frusta(views, cloud.xyz, 100, (0.05, 0.95), BLACK, 0)
    shell = sample_far_shell(views, np.zeros(3), 30.0, 50, BLACK, 0)
    assert both == PointCloud(np.concatenate([volume.xyz, shell.xyz]), np.concatenate([volume.rgb, shell.rgb]))
    none = background_points(cloud, views, num_view_volume=0, num_far_shell=0, **common)
    assert none.xyz.shape == (0, 3)
    with pytest.raises(ValueError, match="must be >= 0"):
        background_points(cloud, views, num_view_volume=-1, num_far_shell=0, **common)


def _drawing_pixels(points: PointCloud, views: list[View]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(camera index, u, v, depth) of each point in the camera its colour names (blue = 40 x camera)."""
    camera = points.rgb[:, 2] // 40
    u, v, depth = np.empty(len(camera)), np.empty(len(camera)), np.empty(len(camera))
    for index, view in enumerate(views):
        rows = camera == index
        u[rows], v[rows], depth[rows] = _project(points.xyz[rows], view)
    return camera, u, v, depth


def test_beyond_cloud_points_lie_on_the_ray_of_the_pixel_whose_colour_they_take():
    views, cloud = _ring_views(), _ball_cloud()
    points = sample_beyond_cloud(views, cloud, 3000, (0.05, 0.95), 2.0, BLACK, seed=0)
    assert points.xyz.shape == (3000, 3) and points.xyz.dtype == np.float32 and points.rgb.shape == (3000, 3)
    camera, u, v, depth = _drawing_pixels(points, views)
    assert set(np.unique(camera)) == {0, 1, 2} and (depth > 0).all()
    # The colour (red = 4 x column, green = 4 x row) names the pixel; the point projects into it
    # (up to float32 rounding at a pixel boundary).
    column_error, row_error = points.rgb[:, 0] / 4 - np.floor(u), points.rgb[:, 1] / 4 - np.floor(v)
    assert np.abs(column_error).max() <= 1 and np.abs(row_error).max() <= 1
    assert (column_error == 0).mean() > 0.99 and (row_error == 0).mean() > 0.99


def test_beyond_cloud_depths_are_uniform_in_inverse_depth_from_the_near_quantile_to_k_times_the_far_one():
    from scipy.stats import kstest

    views, cloud = _ring_views(), _ball_cloud()
    points = sample_beyond_cloud(views, cloud, 4000, (0.05, 0.95), 3.0, BLACK, seed=1)
    camera, _, _, depth = _drawing_pixels(points, views)
    in_inverse_depth, in_depth = np.empty(4000), np.empty(4000)
    beyond = np.zeros(4000, dtype=bool)
    for index, (near, far) in enumerate(_reference_bounds(views, cloud, (0.05, 0.95))):
        rows = camera == index
        assert (depth[rows] >= near * (1 - 1e-5)).all() and (depth[rows] <= 3.0 * far * (1 + 1e-5)).all()
        # Where the point lies between near (0) and 3 far (1), in inverse depth and in depth.
        in_inverse_depth[rows] = (1 / near - 1 / depth[rows]) / (1 / near - 1 / (3.0 * far))
        in_depth[rows] = (depth[rows] - near) / (3.0 * far - near)
        beyond[rows] = depth[rows] > far
    assert kstest(in_inverse_depth, "uniform").pvalue > 1e-3
    assert kstest(in_depth, "uniform").pvalue < 1e-6  # the test tells the two samplings apart
    assert beyond.mean() > 0.2  # a good share reaches past the cloud's far depth


def test_beyond_cloud_draws_every_pixel_equally_likely():
    small = _view(_look_at((0.0, -4.0, 0.0)), _pixel_code_image(0)[:32])  # half the pixels
    views = [small, _view(_look_at((0.0, 4.0, 0.0)), _pixel_code_image(1))]
    points = sample_beyond_cloud(views, _ball_cloud(), 3000, (0.05, 0.95), 2.0, BLACK, seed=2)
    share = (points.rgb[:, 2] // 40 == 0).mean()
    assert abs(share - 1 / 3) < 4 * np.sqrt(2 / 9 / 3000)
    assert points.rgb[points.rgb[:, 2] == 0, 1].max() < 4 * 32  # rows of the small image only


def test_beyond_cloud_points_depend_on_the_seed_only_and_differ_from_the_view_volume_points():
    views, cloud = _ring_views(), _ball_cloud()
    first = sample_beyond_cloud(views, cloud, 500, (0.05, 0.95), 2.0, BLACK, seed=3)
    assert first == sample_beyond_cloud(views, cloud, 500, (0.05, 0.95), 2.0, BLACK, seed=3)
    assert not np.allclose(first.xyz, sample_beyond_cloud(views, cloud, 500, (0.05, 0.95), 2.0, BLACK, seed=4).xyz)
    assert not np.allclose(first.xyz, sample_view_frusta(views, cloud, 500, (0.05, 0.95), BLACK, seed=3).xyz)


@pytest.mark.parametrize("count, factor, message", [(0, 2.0, "at least 1"), (10, 0.5, "far factor is 0.5")])
def test_beyond_cloud_refuses_bad_arguments(count, factor, message):
    with pytest.raises(ValueError, match=message):
        sample_beyond_cloud(_ring_views(), _ball_cloud(), count, (0.05, 0.95), factor, BLACK, seed=0)


def test_camera_shell_is_centred_where_the_cameras_look_with_a_multiple_of_their_distance():
    # Cameras on a ring of radius 4 at height 1 around (0.3, -0.2, 0.5), all looking at it.
    target = np.array([0.3, -0.2, 0.5])
    views = [_view(_look_at(target + (4 * np.cos(a), 4 * np.sin(a), 1.0), target), _pixel_code_image(0))
             for a in (0.0, 2.0, 4.0)]
    centre, radius = camera_shell_geometry(views, 2.5)
    np.testing.assert_allclose(centre, target, atol=1e-9)
    np.testing.assert_allclose(radius, 2.5 * np.sqrt(17.0), rtol=1e-9)
    parallel = [_view(_look_at((x, 0.0, 0.0), (x, 1.0, 0.0)), _pixel_code_image(0)) for x in (0.0, 1.0, 2.0)]
    with pytest.raises(ValueError, match="optical axes are .*parallel.*camera shell"):
        camera_shell_geometry(parallel, 2.5)


def test_background_points_add_beyond_cloud_and_camera_shell_points_after_the_others():
    views, cloud = _ring_views(), PointCloud(_ball_cloud())
    common = dict(depth_quantiles=(0.05, 0.95), shell_centre=np.zeros(3), shell_radius=30.0, background=BLACK, seed=5)
    points = background_points(cloud, views, num_view_volume=0, num_far_shell=20, num_beyond_cloud=100,
                               beyond_cloud_depth_quantiles=(0.1, 0.9), beyond_cloud_far_factor=1.5,
                               num_camera_shell=30, camera_shell_radius=2.0, **common)
    far_shell = sample_far_shell(views, np.zeros(3), 30.0, 20, BLACK, 5)
    beyond = sample_beyond_cloud(views, cloud.xyz, 100, (0.1, 0.9), 1.5, BLACK, 5)
    centre, radius = camera_shell_geometry(views, 2.0)
    camera_shell = sample_far_shell(views, centre, radius, 30, BLACK, 5, CAMERA_SHELL_STREAM)
    parts = (far_shell, beyond, camera_shell)
    assert points == PointCloud(np.concatenate([p.xyz for p in parts]), np.concatenate([p.rgb for p in parts]))
    assert not np.allclose(far_shell.xyz[:20] / 30.0, (camera_shell.xyz[:20] - centre) / radius)  # own stream
    with pytest.raises(ValueError, match="-1 camera-shell"):
        background_points(cloud, views, num_view_volume=0, num_far_shell=0, num_beyond_cloud=0,
                          beyond_cloud_depth_quantiles=(0.1, 0.9), beyond_cloud_far_factor=1.5, num_camera_shell=-1,
                          camera_shell_radius=2.0, **common)
