"""Camera paths: look-at, fitted camera, scene frame, orbit, focus point and the ellipse path."""
import math

import numpy as np
import pytest
import torch

from taichi_3dgs.viewer.camera_paths import (FALLBACK_UP, ellipse_path, fit_camera_to_bounds, focus_point,
                                             look_at, mean_up, orbit_path, overview_camera, scene_bounds,
                                             scene_frame, scene_up)
from taichi_3dgs.rotations import axis_angle_to_matrix
from taichi_3dgs.viewer.geometry import rigid_transform

FOCUS = np.array([0.5, -1.0, 2.0])
UP = np.array([0.0, 0.0, 1.0])
SEMI_AXES = (4.0, 2.0)
HEIGHT = 1.5


def _rig(semi_axes=SEMI_AXES, height=HEIGHT, count=4):
    """Cameras on an ellipse around FOCUS at HEIGHT above it, all looking at FOCUS."""
    angles = 2 * math.pi * np.arange(count) / count
    eyes = FOCUS + np.stack([semi_axes[0] * np.cos(angles), semi_axes[1] * np.sin(angles),
                             np.full(count, height)], axis=1)
    return np.stack([look_at(eye, FOCUS, UP) for eye in eyes])


def _check_looks_at(poses, target):
    for pose in poses:
        to_target = target - pose[:3, 3]
        np.testing.assert_allclose(pose[:3, 2], to_target / np.linalg.norm(to_target), atol=1e-9)


def test_look_at_gives_a_right_handed_opencv_frame_facing_the_target_with_minus_y_up():
    pose = look_at(np.array([3.0, 1.0, 2.0]), FOCUS, UP)
    rotation = pose[:3, :3]
    np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-12)
    assert np.linalg.det(rotation) == pytest.approx(1.0)
    _check_looks_at(pose[None], FOCUS)
    assert -rotation[:, 1] @ UP > 0.9  # the camera's up (-y) leans to the world up
    assert rotation[:, 0] @ UP == pytest.approx(0.0, abs=1e-12)  # no roll


def test_focus_point_is_where_the_optical_axes_meet():
    np.testing.assert_allclose(focus_point(_rig(count=7)), FOCUS, atol=1e-9)


def test_focus_point_minimises_the_squared_distances_to_skew_axes():
    rng = np.random.default_rng(1)
    poses = np.stack([look_at(rng.normal(size=3) * 5, rng.normal(size=3), UP) for _ in range(6)])

    def cost(point):
        total = 0.0
        for pose in poses:
            offset = point - pose[:3, 3]
            total += np.sum((offset - (offset @ pose[:3, 2]) * pose[:3, 2]) ** 2)
        return total

    best = focus_point(poses)
    for delta in np.eye(3) * 1e-3:
        assert cost(best) < cost(best + delta) and cost(best) < cost(best - delta)


def test_focus_point_of_parallel_cameras_is_an_error():
    poses = np.stack([rigid_transform(np.eye(3), [float(i), 0.0, 0.0]) for i in range(3)])
    with pytest.raises(ValueError, match="parallel"):
        focus_point(poses)


def test_mean_up_is_the_mean_of_the_cameras_minus_y_axes():
    np.testing.assert_allclose(mean_up(_rig()), UP, atol=1e-12)


def test_ellipse_path_passes_through_the_cameras_ellipse_at_their_height_looking_at_the_focus():
    poses = ellipse_path(_rig(), 60)
    assert poses.shape == (60, 4, 4)
    offsets = poses[:, :3, 3] - FOCUS
    np.testing.assert_allclose(offsets[:, 2], HEIGHT, atol=1e-9)
    # semi-axes sqrt(2) * RMS of the coordinates: for the 4 rig cameras exactly a and b
    np.testing.assert_allclose((offsets[:, 0] / SEMI_AXES[0]) ** 2 + (offsets[:, 1] / SEMI_AXES[1]) ** 2,
                               1.0, atol=1e-9)
    _check_looks_at(poses, FOCUS)
    assert np.all(-poses[:, :3, 1] @ UP > 0)


def test_ellipse_path_is_closed_and_has_constant_speed():
    poses = ellipse_path(_rig(), 90)
    eyes = poses[:, :3, 3]
    steps = np.linalg.norm(np.diff(np.concatenate([eyes, eyes[:1]]), axis=0), axis=1)
    assert steps.max() / steps.min() < 1.01  # the closing step included
    np.testing.assert_allclose(eyes[0], _rig()[0][:3, 3], atol=1e-9)  # starts at the first camera


def test_ellipse_path_moves_with_the_capture_under_a_rigid_transform():
    transform = rigid_transform(axis_angle_to_matrix(np.array([1.0, 2.0, -0.5]), 0.8), [3.0, -2.0, 1.0])
    moved_rig = np.einsum("ij,cjk->cik", transform, _rig())
    expected = np.einsum("ij,cjk->cik", transform, ellipse_path(_rig(), 24))
    np.testing.assert_allclose(ellipse_path(moved_rig, 24), expected, atol=1e-9)


def test_orbit_path_keeps_distance_and_view_of_the_centre_and_turns_evenly():
    start = look_at(FOCUS + np.array([5.0, 0.0, 1.0]), FOCUS, UP)
    poses = orbit_path(start, FOCUS, UP, 8)
    np.testing.assert_array_equal(poses[0], start)
    np.testing.assert_allclose(np.linalg.norm(poses[:, :3, 3] - FOCUS, axis=1), math.sqrt(26.0))
    _check_looks_at(poses, FOCUS)
    azimuths = np.unwrap(np.arctan2(poses[:, 1, 3] - FOCUS[1], poses[:, 0, 3] - FOCUS[0]))
    np.testing.assert_allclose(np.diff(azimuths), 2 * math.pi / 8, atol=1e-12)


def test_fitted_camera_sees_the_whole_sphere_touching_the_nearer_borders():
    center, radius, width, height = np.array([1.0, 2.0, 3.0]), 2.0, 160, 90
    T_world_camera, K = fit_camera_to_bounds(center, radius, width, height)
    eye = T_world_camera[:3, 3]
    distance = np.linalg.norm(center - eye)
    # angular radius of the sphere = the smaller half field of view (vertical here)
    assert math.asin(radius / distance) == pytest.approx(math.atan(height / 2 / K[1, 1]))
    _check_looks_at(T_world_camera[None], center)


def test_fitted_camera_defaults_to_the_world_axes():
    T_world_camera, _ = fit_camera_to_bounds(np.array([1.0, 2.0, 3.0]), 2.0, 160, 90)
    np.testing.assert_allclose(T_world_camera[:3, :3], np.eye(3), atol=1e-12)


def test_fitted_camera_looks_down_from_the_elevation_upright_for_up():
    center, radius, width, height = np.array([1.0, 2.0, 3.0]), 2.0, 160, 90
    up = np.array([0.0, 0.6, 0.8])
    T_world_camera, K = fit_camera_to_bounds(center, radius, width, height, up=2.0 * up,
                                             elevation_degrees=25.0)
    eye = T_world_camera[:3, 3]
    _check_looks_at(T_world_camera[None], center)
    assert math.asin((eye - center) @ up / np.linalg.norm(eye - center)) == pytest.approx(math.radians(25.0))
    assert T_world_camera[:3, 0] @ up == pytest.approx(0.0, abs=1e-12)  # no roll
    assert -T_world_camera[:3, 1] @ up == pytest.approx(math.cos(math.radians(25.0)))
    assert math.asin(radius / np.linalg.norm(center - eye)) == pytest.approx(math.atan(height / 2 / K[1, 1]))


def test_fitted_camera_rejects_a_zero_up_and_a_vertical_elevation():
    with pytest.raises(ValueError, match="up"):
        fit_camera_to_bounds(np.zeros(3), 1.0, 16, 9, up=np.zeros(3))
    with pytest.raises(ValueError, match="elevation"):
        fit_camera_to_bounds(np.zeros(3), 1.0, 16, 9, elevation_degrees=90.0)


def test_empty_scene_is_framed_as_the_unit_sphere_at_the_origin_upright_for_the_fallback_up():
    empty = torch.zeros(0, 3)
    center, radius = scene_bounds(empty)
    np.testing.assert_array_equal(center, np.zeros(3))
    assert radius == 1.0
    np.testing.assert_array_equal(scene_up(empty), FALLBACK_UP)
    T_world_camera, K, center, up = overview_camera(empty, 40, 30)
    np.testing.assert_array_equal(up, FALLBACK_UP)
    # The origin projects to the image centre, and the unit sphere touches the nearer (top and
    # bottom) borders: distance 1 / sin(half the vertical field of view).
    in_camera = np.linalg.inv(T_world_camera) @ np.array([0.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose((K @ in_camera[:3])[:2] / in_camera[2], [20.0, 15.0], atol=1e-9)
    half_fov_y = math.atan(15.0 / K[1, 1])
    assert np.linalg.norm(T_world_camera[:3, 3]) == pytest.approx(1.0 / math.sin(half_fov_y))


def test_scene_bounds_ignore_far_floaters():
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.normal(size=(950, 3)), rng.normal(size=(50, 3)) * 1000])
    center, radius = scene_bounds(torch.from_numpy(points))
    assert np.linalg.norm(center) < 0.2 and 1.5 < radius < 5.0


def test_scene_frame_takes_bounds_from_the_means_and_up_from_the_cameras_else_the_next_source():
    rng = np.random.default_rng(0)
    means = torch.from_numpy(rng.normal(size=(200, 3)) * [3.0, 3.0, 0.3] + FOCUS)  # flat along z
    poses = _rig()
    center, radius, up = scene_frame(means, poses)
    expected_center, expected_radius = scene_bounds(means)
    np.testing.assert_array_equal(center, expected_center)
    assert radius == expected_radius
    np.testing.assert_array_equal(up, mean_up(poses))
    # Cameras only: their centres' mean and largest distance from it.
    center, radius, up = scene_frame(None, poses)
    np.testing.assert_allclose(center, FOCUS + [0.0, 0.0, HEIGHT], atol=1e-12)
    assert radius == pytest.approx(SEMI_AXES[0])
    # Ups that cancel out (a camera and its upside-down twin) leave up to the points, then the fallback.
    flipped = poses[:1] @ np.diag([1.0, -1.0, -1.0, 1.0])
    opposed = np.concatenate([poses[:1], flipped])
    np.testing.assert_array_equal(scene_frame(means, opposed)[2], scene_up(means))
    center, radius, up = scene_frame(None, None)
    np.testing.assert_array_equal(center, np.zeros(3))
    assert radius == 1.0
    np.testing.assert_array_equal(up, FALLBACK_UP)
