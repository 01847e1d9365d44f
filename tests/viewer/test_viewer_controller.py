"""Controller: keys and drags move the camera and the selected object as documented."""
import math

import numpy as np
import pytest
import torch

from taichi_3dgs.scene import GaussianScene
from taichi_3dgs.viewer.controller import Controller
from taichi_3dgs.rotations import axis_angle_to_matrix
from taichi_3dgs.viewer.geometry import rigid_transform
from taichi_3dgs.viewer.scene_objects import SceneObject

STEP = 0.5
TURN = math.radians(5.0)
# A camera at (1, 2, 3) turned 30 degrees about world y, so camera and world axes differ.
CAMERA_ROTATION = axis_angle_to_matrix(np.array([0.0, 1.0, 0.0]), math.radians(30.0))
CAMERA_POSE = rigid_transform(CAMERA_ROTATION, np.array([1.0, 2.0, 3.0]))


def _object(name, center):
    """Four Gaussians whose per-axis median is `center`."""
    means = torch.tensor(center, dtype=torch.float32) + torch.tensor(
        [[-1.0, -1.0, -1.0], [-1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])
    scene = GaussianScene(means, torch.tensor([[1.0, 0, 0, 0]]).repeat(4, 1), torch.zeros(4, 3),
                          torch.zeros(4), torch.zeros(4, 16, 3))
    return SceneObject(name, scene)


@pytest.fixture
def controller():
    objects = [_object("a", [0.0, 0.0, 10.0]), _object("b", [5.0, 0.0, 10.0])]
    dataset = [(rigid_transform(np.eye(3), [0.0, 0.0, float(i)]), np.diag([100.0 + i, 100.0, 1.0]))
               for i in range(3)]
    return Controller(objects=objects, T_world_camera=CAMERA_POSE, K=np.diag([100.0, 100.0, 1.0]),
                      width=64, height=48, translation_step=STEP, dataset_cameras=dataset)


@pytest.mark.parametrize("key, camera_axis", [
    ("w", [0, 0, 1]), ("s", [0, 0, -1]), ("a", [-1, 0, 0]), ("d", [1, 0, 0]),
    ("-", [0, 1, 0]), ("=", [0, -1, 0]),
])
def test_movement_keys_move_the_camera_one_step_along_its_own_axes(controller, key, camera_axis):
    assert controller.press(key)
    expected = CAMERA_POSE[:3, 3] + STEP * CAMERA_ROTATION @ np.array(camera_axis, dtype=float)
    np.testing.assert_allclose(controller.T_world_camera[:3, 3], expected, atol=1e-12)
    np.testing.assert_allclose(controller.T_world_camera[:3, :3], CAMERA_ROTATION, atol=1e-12)


def test_in_object_mode_movement_keys_move_the_object_along_the_camera_axes(controller):
    controller.press("2")
    controller.press("w")
    controller.press("d")
    expected = STEP * CAMERA_ROTATION @ np.array([1.0, 0.0, 1.0])
    np.testing.assert_allclose(controller.objects[1].T_world_object[:3, 3], expected, atol=1e-12)
    np.testing.assert_array_equal(controller.objects[0].T_world_object, np.eye(4))
    np.testing.assert_array_equal(controller.T_world_camera, CAMERA_POSE)


def test_digit_keys_select_objects_and_0_the_camera_and_ignore_missing_objects(controller):
    assert controller.press("2") and controller.selected == 2
    assert not controller.press("3") and controller.selected == 2
    assert controller.press("0") and controller.selected == 0


def test_q_and_e_turn_the_camera_left_and_right_in_place(controller):
    controller.press("q")
    forward = controller.T_world_camera[:3, 2]
    np.testing.assert_allclose(controller.T_world_camera[:3, 3], CAMERA_POSE[:3, 3])
    # Turning left brings the forward axis towards the camera's old left (-x) by one step.
    old_x, old_z = CAMERA_ROTATION[:, 0], CAMERA_ROTATION[:, 2]
    np.testing.assert_allclose(forward, math.cos(TURN) * old_z - math.sin(TURN) * old_x, atol=1e-12)
    controller.press("e")
    np.testing.assert_allclose(controller.T_world_camera, CAMERA_POSE, atol=1e-12)


def test_q_spins_the_selected_object_about_its_centre_with_its_near_side_moving_left(controller):
    controller.press("1")
    obj = controller.objects[0]
    center_before = obj.world_center.copy()
    # The object starts at identity pose, so its frame is the world frame.
    near_point = center_before - CAMERA_ROTATION[:, 2]  # one unit towards the camera
    controller.press("q")
    np.testing.assert_allclose(obj.world_center, center_before, atol=1e-12)
    moved = obj.T_world_object[:3, :3] @ near_point + obj.T_world_object[:3, 3]
    shift_in_camera = CAMERA_ROTATION.T @ (moved - near_point)
    assert shift_in_camera[0] == pytest.approx(-math.sin(TURN), abs=1e-12)
    assert shift_in_camera[1] == pytest.approx(0.0, abs=1e-12)


def test_dragging_right_turns_the_camera_right_about_its_centre(controller):
    assert controller.drag(0.1, 0.0)
    forward_in_old_camera = CAMERA_ROTATION.T @ controller.T_world_camera[:3, 2]
    angle = 0.1 * controller.mouse_sensitivity
    np.testing.assert_allclose(forward_in_old_camera, [math.sin(angle), 0.0, math.cos(angle)], atol=1e-12)
    np.testing.assert_allclose(controller.T_world_camera[:3, 3], CAMERA_POSE[:3, 3])


def test_dragging_up_an_object_turns_its_near_side_up_about_its_centre(controller):
    controller.press("2")
    obj = controller.objects[1]
    center = obj.world_center.copy()
    near_point = center - CAMERA_ROTATION[:, 2]
    controller.drag(0.0, 0.05)
    moved = obj.T_world_object[:3, :3] @ near_point + obj.T_world_object[:3, 3]
    shift_in_camera = CAMERA_ROTATION.T @ (moved - near_point)
    assert shift_in_camera[1] < -1e-3  # camera y points down: negative is up on screen
    np.testing.assert_allclose(obj.world_center, center, atol=1e-12)


def test_h_and_p_hide_and_show_the_selected_object_or_all_in_camera_mode(controller):
    controller.press("1")
    assert controller.press("h")
    assert [obj.visible for obj in controller.objects] == [False, True]
    controller.press("0")
    assert controller.press("h")
    assert [obj.visible for obj in controller.objects] == [False, False]
    assert controller.press("p")
    assert [obj.visible for obj in controller.objects] == [True, True]
    assert not controller.press("p")


def test_brackets_step_through_the_dataset_cameras_with_wrap_around(controller):
    visited = []
    for key in ["]", "]", "]", "]", "["]:
        controller.press(key)
        visited.append((controller.dataset_index, controller.T_world_camera[2, 3], controller.K[0, 0]))
    assert visited == [(0, 0.0, 100.0), (1, 1.0, 101.0), (2, 2.0, 102.0), (0, 0.0, 100.0), (2, 2.0, 102.0)]


def test_brackets_without_dataset_cameras_change_nothing(controller):
    controller.dataset_cameras = []
    assert not controller.press("]")
    np.testing.assert_array_equal(controller.T_world_camera, CAMERA_POSE)


def test_unknown_keys_change_nothing(controller):
    for key in ["x", "c", "Escape", "LMB", "Shift"]:
        assert not controller.press(key)
    np.testing.assert_array_equal(controller.T_world_camera, CAMERA_POSE)
    assert controller.selected == 0


def test_viewmat_is_the_inverse_of_the_camera_pose(controller):
    controller.press("w")
    np.testing.assert_allclose(controller.viewmat @ controller.T_world_camera, np.eye(4), atol=1e-12)
