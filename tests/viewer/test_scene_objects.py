"""Scene objects on the real trained scene: poses move Gaussians and their view-dependent colour,
and several objects merge into one correctly depth-sorted set."""
import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation
from conftest import dataset_path
from viewer_fixtures import trained_ply_path

from taichi_3dgs.data.cameras import read_cameras_json
from taichi_3dgs.rasterizer import rasterize
from taichi_3dgs.scene import GaussianScene, write_scene_parquet
from taichi_3dgs.viewer.camera_paths import fit_camera_to_bounds, scene_bounds
from taichi_3dgs.rotations import axis_angle_to_matrix
from taichi_3dgs.viewer.geometry import invert_rigid, rigid_transform
from taichi_3dgs.viewer.rendering import render_image
from taichi_3dgs.viewer.scene_objects import (SceneObject, compose_objects, load_scene_objects,
                                              merge_scenes, transform_scene)

WIDTH, HEIGHT = 160, 120


@pytest.fixture(scope="module")
def trained():
    """(object at identity pose, scene centre, scene radius) of the real 9,080-Gaussian scene."""
    [obj] = load_scene_objects([trained_ply_path()])
    center, radius = scene_bounds(obj.scene.means)
    return obj, center, radius


@pytest.fixture(scope="module")
def close_view(trained):
    """viewmat and K of a camera close enough that the scene fills the image."""
    _, center, radius = trained
    T_world_camera, K = fit_camera_to_bounds(center, 0.5 * radius, WIDTH, HEIGHT)
    return invert_rigid(T_world_camera), K


def _turn_about_center(center, angle_degrees):
    rotation = axis_angle_to_matrix(np.array([0.2, -1.0, 0.3]), math.radians(angle_degrees))
    return rigid_transform(rotation, center - rotation @ center)


def test_object_rotated_90_degrees_renders_like_the_camera_rotated_minus_90_degrees(trained, close_view):
    obj, center, _ = trained
    viewmat, K = close_view
    pose = _turn_about_center(center, 90.0)
    rotated_object = render_image(transform_scene(obj.scene, pose), viewmat, K, WIDTH, HEIGHT)
    # The camera turned by -90 degrees about the same axis: T_world_camera' = pose^-1 T_world_camera.
    rotated_camera = render_image(obj.scene, viewmat @ pose, K, WIDTH, HEIGHT)
    assert float(rotated_camera.mean()) > 0.1  # the scene is in view
    assert float((rotated_object - rotated_camera).abs().mean()) < 1e-3


def test_the_rotation_check_detects_unrotated_sh_coefficients(trained, close_view):
    obj, center, _ = trained
    viewmat, K = close_view
    pose = _turn_about_center(center, 90.0)
    colour_not_rotated = replace(transform_scene(obj.scene, pose), sh_coeffs=obj.scene.sh_coeffs)
    wrong = render_image(colour_not_rotated, viewmat, K, WIDTH, HEIGHT)
    rotated_camera = render_image(obj.scene, viewmat @ pose, K, WIDTH, HEIGHT)
    assert float((wrong - rotated_camera).abs().mean()) > 1e-2


def test_transformed_covariances_are_rotated(trained):
    obj, center, _ = trained
    pose = _turn_about_center(center, 37.0)
    moved = transform_scene(obj.scene, pose)
    rotation = torch.from_numpy(pose[:3, :3])

    def covariances(scene):
        # scipy's quaternions are x, y, z, w (and normalised by scipy)
        R = torch.from_numpy(Rotation.from_quat(scene.quats.double()[:, [1, 2, 3, 0]].numpy()).as_matrix())
        S = torch.diag_embed(scene.log_scales.double().exp())
        return R @ S @ S.transpose(1, 2) @ R.transpose(1, 2)

    expected = rotation @ covariances(obj.scene) @ rotation.T
    scale = expected.abs().amax(dim=(1, 2), keepdim=True)
    torch.testing.assert_close(covariances(moved) / scale, expected / scale, atol=1e-5, rtol=0)
    torch.testing.assert_close(moved.means.double(), obj.scene.means.double() @ rotation.T
                               + torch.from_numpy(pose[:3, 3]), atol=1e-3, rtol=1e-6)


def test_scene_merged_twice_with_an_offset_renders_both_copies(trained):
    obj, center, radius = trained
    offset = np.array([2.0 * radius, 0.0, 0.0])
    copy = SceneObject("copy", obj.scene, rigid_transform(np.eye(3), offset))
    T_world_camera, K = fit_camera_to_bounds(center + offset / 2, 2.0 * radius, WIDTH, HEIGHT)
    viewmat = torch.tensor(invert_rigid(T_world_camera), dtype=torch.float32)
    K = torch.tensor(K, dtype=torch.float32)

    def render(objects):
        scene = compose_objects(objects)
        return scene.num_gaussians, rasterize(scene.means, scene.quats, scene.log_scales,
                                              scene.opacity_logits, scene.sh_coeffs, viewmat, K,
                                              WIDTH, HEIGHT)

    _, first = render([obj])
    _, second = render([copy])
    count, both = render([obj, copy])
    assert count == 2 * obj.scene.num_gaussians
    only_first = (first.alpha > 0.5) & (second.alpha < 0.01)
    only_second = (second.alpha > 0.5) & (first.alpha < 0.01)
    assert float(only_first.float().mean()) > 0.05 and float(only_second.float().mean()) > 0.05
    assert float((both.image - first.image)[only_first].abs().max()) < 1e-4
    assert float((both.image - second.image)[only_second].abs().max()) < 1e-4


def test_hidden_objects_are_left_out_and_nothing_visible_gives_none(trained):
    obj, _, _ = trained
    hidden = SceneObject("hidden", obj.scene, visible=False)
    assert compose_objects([obj, hidden]).num_gaussians == obj.scene.num_gaussians
    assert compose_objects([hidden]) is None


def test_scenes_with_different_colour_models_are_not_merged(trained):
    obj, _, _ = trained
    with pytest.raises(ValueError, match="different colour activations"):
        merge_scenes([obj.scene, replace(obj.scene, color_activation="sigmoid")])


def test_scenes_with_different_antialiased_flags_are_not_merged(trained):
    obj, _, _ = trained
    antialiased = replace(obj.scene, antialiased=True)
    with pytest.raises(ValueError, match="some scenes are antialiased and some are not"):
        merge_scenes([obj.scene, antialiased])
    assert merge_scenes([antialiased, antialiased]).antialiased


def test_loading_an_antialiased_scene_with_a_plain_one_is_refused_naming_both(trained, tmp_path):
    obj, _, _ = trained
    antialiased_path = tmp_path / "mip.parquet"
    write_scene_parquet(antialiased_path, replace(obj.scene, antialiased=True))
    with pytest.raises(ValueError, match=r"antialiasing filter \(.*mip\.parquet\) and without it "
                                         r"\(.*point_cloud\.ply\) cannot be viewed together"):
        load_scene_objects([antialiased_path, trained_ply_path()])


def test_merged_sh_degree_is_the_largest(trained):
    obj, _, _ = trained
    degree_zero = GaussianScene(obj.scene.means[:3], obj.scene.quats[:3], obj.scene.log_scales[:3],
                                obj.scene.opacity_logits[:3], torch.zeros(3, 16, 3), sh_degree=0)
    merged = merge_scenes([degree_zero, obj.scene])
    assert merged.sh_degree == 3
    merged.validate()


def test_loading_a_sigmoid_scene_with_a_linear_one_converts_it_with_a_warning(trained, tmp_path):
    obj, _, _ = trained
    sigmoid_path = tmp_path / "original_project.parquet"
    write_scene_parquet(sigmoid_path, replace(obj.scene, color_activation="sigmoid"))
    with pytest.warns(UserWarning, match="original_project.parquet: sigmoid colour converted to linear"):
        objects = load_scene_objects([trained_ply_path(), sigmoid_path])
    assert [o.scene.color_activation for o in objects] == ["linear", "linear"]
    assert compose_objects(objects).num_gaussians == 2 * obj.scene.num_gaussians


def test_object_poses_are_checked_as_the_camera_reader_checks_poses(trained, tmp_path):
    # The Instant-NGP fox's poses are stored in float32 (R^T R = I only to ~3e-6): the camera
    # reader accepts them, so an object placed by one must be accepted too (the viewer once
    # refused anything beyond 1e-6), and both refuse a reflection with the same words.
    obj, _, _ = trained
    frames = json.loads((dataset_path("ngp_fox") / "transforms.json").read_text())["frames"]
    poses = [np.array(frame["transform_matrix"]) for frame in frames]
    errors = [np.abs(pose[:3, :3].T @ pose[:3, :3] - np.eye(3)).max() for pose in poses]
    pose = poses[int(np.argmax(errors))]
    assert max(errors) > 1e-6
    SceneObject("fox pose", obj.scene, T_world_object=pose)
    reflection = np.diag([1.0, 1.0, -1.0, 1.0])
    with pytest.raises(ValueError) as viewer_error:
        SceneObject("mirrored", obj.scene, T_world_object=reflection)
    record = {"image_path": "a.png", "T_pointcloud_camera": reflection.tolist(),
              "camera_intrinsics": [[100.0, 0.0, 50.0], [0.0, 100.0, 50.0], [0.0, 0.0, 1.0]],
              "camera_width": 100, "camera_height": 100}
    (tmp_path / "cameras.json").write_text(json.dumps([record]))
    with pytest.raises(ValueError) as reader_error:
        read_cameras_json(tmp_path / "cameras.json")
    problem = "has a rotation block that is a reflection (det R = -1), not a rotation"
    assert f"mirrored: T_world_object {problem}" in str(viewer_error.value)
    assert problem in str(reader_error.value)
