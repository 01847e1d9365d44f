"""The headless orbit and the first view stand upright on the real (procedural, z-up) demo scene:
above the ground, looking down at it, about the scene's up axis, with and without dataset cameras."""
import math

import numpy as np
import pytest
import torch
from conftest import dataset_path

from taichi_3dgs.data.cameras import read_cameras_json
from taichi_3dgs.data.demo_scene import DemoSceneSpec, make_demo_scene
from taichi_3dgs.data.point_cloud import read_point_cloud
from taichi_3dgs.scene.model import GaussianModel
from taichi_3dgs.viewer.app import create_controller, orbit_poses
from taichi_3dgs.viewer.camera_paths import FALLBACK_UP, ORBIT_ELEVATION_DEGREES, mean_up, scene_up
from taichi_3dgs.rotations import axis_angle_to_matrix
from taichi_3dgs.viewer.geometry import rigid_transform
from taichi_3dgs.viewer.scene_objects import SceneObject

Z_UP = np.array([0.0, 0.0, 1.0])
GROUND_HEIGHT = 0.0  # the demo's ground square lies in the plane z = 0
N_FRAMES = 16
WIDTH, HEIGHT = 64, 48
# Takes the demo's z-up world to a y-up one (z -> +y), the opposite of the fallback's -y.
Z_TO_Y = axis_angle_to_matrix(np.array([1.0, 0.0, 0.0]), -math.pi / 2)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The demo scene's point cloud as Gaussians (one object) and its training cameras."""
    folder = make_demo_scene(tmp_path_factory.mktemp("demo"),
                             DemoSceneSpec(width=16, height=16, num_views=8, num_points=2000))
    scene = GaussianModel.from_point_cloud(read_point_cloud(folder / "point_cloud.parquet")).to_scene()
    return scene, read_cameras_json(folder / "train.json")


def _check_upright(poses, up, ground_height):
    """Every camera above the ground (along `up`), its image up leaning to `up`, looking down."""
    for pose in poses:
        assert pose[:3, 3] @ up > ground_height + 1.0
        assert -pose[:3, 1] @ up > 0.5
        assert pose[:3, 2] @ up < -0.2


def test_orbit_without_cameras_circles_the_z_axis_above_the_ground_looking_down(demo):
    scene, _ = demo
    poses, _ = orbit_poses([SceneObject("demo", scene)], N_FRAMES, WIDTH, HEIGHT, [])
    _check_upright(poses, Z_UP, GROUND_HEIGHT)
    # a turn about (nearly) z at one height and one elevation
    heights = poses[:, 2, 3]
    assert heights.max() - heights.min() < 0.02 * np.linalg.norm(poses[0, :2, 3])
    elevations = np.degrees(np.arcsin(-poses[:, 2, 2]))
    np.testing.assert_allclose(elevations, ORBIT_ELEVATION_DEGREES, atol=1.0)
    azimuths = np.unwrap(np.arctan2(poses[:, 1, 3], poses[:, 0, 3]))
    assert abs(azimuths[-1] - azimuths[0]) == pytest.approx(2 * math.pi * (N_FRAMES - 1) / N_FRAMES,
                                                            abs=0.05)


def test_orbit_with_cameras_stays_above_the_ground_looking_down(demo):
    scene, cameras = demo
    poses, _ = orbit_poses([SceneObject("demo", scene)], N_FRAMES, WIDTH, HEIGHT, cameras)
    _check_upright(poses, Z_UP, GROUND_HEIGHT)


def test_points_give_the_demo_z_up_axis_and_the_rotated_axis_when_rotated(demo):
    scene, _ = demo
    assert scene_up(scene.means) @ Z_UP > math.cos(math.radians(2.0))
    y_up = torch.from_numpy(scene.means.double().numpy() @ Z_TO_Y.T)
    np.testing.assert_allclose(Z_TO_Y @ Z_UP, [0.0, 1.0, 0.0], atol=1e-12)
    assert scene_up(y_up) @ np.array([0.0, 1.0, 0.0]) > math.cos(math.radians(2.0))
    rotation = axis_angle_to_matrix(np.array([0.3, -1.0, 0.6]), 2.0)
    rotated = torch.from_numpy(scene.means.double().numpy() @ rotation.T)
    # equal up to the core of points kept by scene_bounds, whose per-axis median centre turns
    # with the axes
    assert scene_up(rotated) @ (rotation @ scene_up(scene.means)) > math.cos(math.radians(1.0))


def test_orbit_of_a_rotated_scene_circles_its_rotated_up_axis(demo):
    scene, _ = demo
    pose = rigid_transform(Z_TO_Y, [1.0, -2.0, 0.5])
    poses, _ = orbit_poses([SceneObject("demo", scene, T_world_object=pose)], N_FRAMES, WIDTH,
                           HEIGHT, [])
    up = Z_TO_Y @ Z_UP
    _check_upright(poses, up, GROUND_HEIGHT + pose[:3, 3] @ up)


def test_viewer_without_cameras_starts_at_the_orbits_first_frame(demo):
    scene, _ = demo
    objects = [SceneObject("demo", scene)]
    controller = create_controller(objects, WIDTH, HEIGHT, [])
    poses, K = orbit_poses(objects, N_FRAMES, WIDTH, HEIGHT, [])
    np.testing.assert_allclose(controller.T_world_camera, poses[0], atol=1e-12)
    np.testing.assert_allclose(controller.K, K)


def test_real_garden_points_give_the_up_of_its_cameras():
    """gsplat's garden: a real outdoor capture (a table on a lawn), world frame not z-up."""
    garden = np.load(dataset_path("gsplat_test_garden") / "test_garden.npz")
    up = scene_up(torch.from_numpy(garden["means3d"]))
    cameras_up = mean_up(np.linalg.inv(garden["viewmats"]))
    # the cameras tilt down at the table, so their mean up leans away from the vertical
    assert up @ cameras_up > math.cos(math.radians(20.0))
    assert abs(up @ FALLBACK_UP) < 0.5  # not the fallback's answer


def test_points_without_a_flat_axis_fall_back_to_minus_y():
    points = torch.from_numpy(np.random.default_rng(0).normal(size=(2000, 3)))
    np.testing.assert_array_equal(scene_up(points), FALLBACK_UP)


def test_flat_points_with_symmetric_heights_take_the_sign_of_minus_y():
    rng = np.random.default_rng(0)
    slab = rng.uniform(-1.0, 1.0, size=(2000, 3)) * [3.0, 0.2, 3.0]  # flat along y, symmetric
    np.testing.assert_allclose(scene_up(torch.from_numpy(slab)), FALLBACK_UP, atol=0.02)
    np.testing.assert_allclose(scene_up(torch.from_numpy(-slab)), FALLBACK_UP, atol=0.02)
