"""tools/refine_poses.py and taichi_3dgs.data.pose_refinement / pose_alignment.

The real check: colmap_table_txt's training cameras with a few poses turned by 1 degree and moved by
1 % of the scene extent. The refinement must keep every untouched pose bit for bit, replace the
perturbed ones, and bring them back to within half a degree of the poses in the scene's own COLMAP
model (written by another reconstruction, the independent reference).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from conftest import dataset_path
from taichi_3dgs.data import read_cameras_json
from taichi_3dgs.data.cameras import CameraRecord, write_cameras_json
from taichi_3dgs.data.colmap import convert_colmap
from taichi_3dgs.data.pose_alignment import agreeing_similarity, apply_similarity, fit_similarity, pose_errors
from taichi_3dgs.data.pose_refinement import neighbour_pairs
from taichi_3dgs.training.dataset import scene_extent
from tool_runner import run_tool

PERTURBED = (1, 4, 6, 9)


def _record(pose: np.ndarray, name: str = "a.jpg") -> CameraRecord:
    return CameraRecord(image_path=f"/images/{name}", K=np.diag([100.0, 100.0, 1.0]), T_pointcloud_camera=pose,
                        width=200, height=200)


def _pose(rotvec, centre) -> np.ndarray:
    pose = np.eye(4)
    pose[:3, :3] = Rotation.from_rotvec(rotvec).as_matrix()
    pose[:3, 3] = centre
    return pose


def _perturbed(record: CameraRecord, axis: np.ndarray, direction: np.ndarray, extent: float) -> CameraRecord:
    delta = _pose(np.radians(1.0) * axis / np.linalg.norm(axis), 0.01 * extent * direction / np.linalg.norm(direction))
    return dataclasses.replace(record, T_pointcloud_camera=record.T_pointcloud_camera @ delta)


def test_fit_similarity_recovers_a_known_scale_turn_and_shift():
    rng = np.random.default_rng(0)
    records = [_record(_pose(rng.normal(size=3), rng.normal(size=3))) for _ in range(6)]
    scale, rotation, shift = 2.5, Rotation.from_rotvec([0.3, -0.2, 0.9]).as_matrix(), np.array([1.0, -4.0, 0.5])
    moved = apply_similarity(records, scale, rotation, shift)
    for record, image in zip(records, moved):  # the centre maps as a point, the axes turn
        np.testing.assert_allclose(image.camera_center, scale * rotation @ record.camera_center + shift, atol=1e-12)
        np.testing.assert_allclose(image.T_pointcloud_camera[:3, :3], rotation @ record.T_pointcloud_camera[:3, :3],
                                   atol=1e-12)
    fitted = fit_similarity(records, moved)
    assert fitted[0] == pytest.approx(scale, rel=1e-12)
    np.testing.assert_allclose(fitted[1], rotation, atol=1e-12)
    np.testing.assert_allclose(fitted[2], shift, atol=1e-12)


def test_agreeing_similarity_ignores_a_camera_placed_on_the_wrong_side():
    rng = np.random.default_rng(1)
    reference = [_record(_pose(rng.normal(size=3) * 0.3, rng.normal(size=3))) for _ in range(8)]
    moved = apply_similarity(reference, 0.5, Rotation.from_rotvec([0.0, 0.0, 1.0]).as_matrix(), np.ones(3))
    moved[3] = dataclasses.replace(moved[3], T_pointcloud_camera=moved[3].T_pointcloud_camera @ _pose([0, 3.0, 0],
                                                                                                     [5.0, 0, 0]))
    similarity, inliers = agreeing_similarity(moved, reference, max_degrees=5.0, max_distance=0.5)
    assert inliers == [0, 1, 2, 4, 5, 6, 7]
    rotation, centre = pose_errors(apply_similarity(moved, *similarity), reference)
    assert rotation[inliers].max() < 1e-9 and centre[inliers].max() < 1e-9
    assert rotation[3] > 100.0


def test_neighbour_pairs_are_the_nearest_cameras_that_face_alike():
    records = [_record(_pose([0, 0, 0], [x, 0.0, 0.0])) for x in (0.0, 1.0, 2.0, 4.0)]
    records.append(_record(_pose([0.0, np.pi, 0.0], [0.0, 0.0, 0.0])))  # at the origin, facing away
    assert neighbour_pairs(records, 1) == [(0, 1), (1, 2), (2, 3)]
    assert all(4 not in pair for pair in neighbour_pairs(records, 10))
    assert neighbour_pairs(records, 10) == [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """(true training records, perturbed copy, the tool's output folder) on colmap_table_txt."""
    root = tmp_path_factory.mktemp("table")
    convert_colmap(dataset_path("colmap_table_txt"), root / "prepared")
    truth = read_cameras_json(root / "prepared" / "train.json")
    rng = np.random.default_rng(0)
    given = list(truth)
    for i in PERTURBED:
        given[i] = _perturbed(truth[i], rng.normal(size=3), rng.normal(size=3), scene_extent(truth))
    (root / "given").mkdir()
    write_cameras_json(root / "given" / "train.json", given)
    assert run_tool("refine_poses", "--cameras", root / "given" / "train.json", "--output_dir", root / "refined",
                    "--max_image_size", 1024) == 0
    return truth, given, root


def test_refinement_keeps_the_good_poses_exactly_and_repairs_the_perturbed_ones(table, capsys):
    truth, given, root = table
    refined = read_cameras_json(root / "refined" / "train.json")
    for i, (record, original) in enumerate(zip(refined, given)):
        if i not in PERTURBED:
            assert record == original, f"camera {i} was moved although its photos agree with it"
        else:
            assert record != original
    before, _ = pose_errors([given[i] for i in PERTURBED], [truth[i] for i in PERTURBED])
    after, _ = pose_errors([refined[i] for i in PERTURBED], [truth[i] for i in PERTURBED])
    np.testing.assert_allclose(before, 1.0, atol=1e-9)
    assert after.max() < 0.5, after


def test_refusing_to_write_over_an_earlier_output(table, capsys):
    _, _, root = table
    before = (root / "refined" / "train.json").read_bytes()
    assert run_tool("refine_poses", "--cameras", root / "given" / "train.json", "--output_dir", root / "refined") == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "train.json exists; choose another --output_dir" in error[0]
    assert (root / "refined" / "train.json").read_bytes() == before


def test_refusing_a_folder_whose_colmap_work_folder_exists(table, capsys):
    _, _, root = table
    (root / "other" / "colmap").mkdir(parents=True)
    (root / "other" / "colmap" / "database.db").write_text("a user's database")
    assert run_tool("refine_poses", "--cameras", root / "given" / "train.json", "--output_dir", root / "other") == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "colmap exists; choose another --output_dir" in error[0]
    assert (root / "other" / "colmap" / "database.db").read_text() == "a user's database"
    assert not (root / "other" / "train.json").exists()
