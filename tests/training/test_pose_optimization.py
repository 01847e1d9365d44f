"""Camera pose optimisation (taichi_3dgs/training/pose_corrections.py) and its trainer hooks.

References: scipy's Rotation for the exponential map, numpy's matrix inverse for the corrected
viewmat, float64 finite differences (torch.autograd.gradcheck) for its gradient. The recovery test
renders the demo scene from a training camera, perturbs that camera by 1 degree and 1 % of the
scene extent, and lets only the correction learn. The trainer tests run with both features on
(`camera_scene.rendered_scene`: one training camera perturbed, one image given a gain and offset);
the exposure transforms themselves: test_exposure_compensation.py.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from camera_scene import (  # noqa: F401  (demo, rendered_scene: fixtures)
    DEMO_EXTENT, PERTURBED_CAMERA, camera_config, demo, perturbation, pose_error, random_pose, rendered_scene,
    scipy_transform,
)
from interruption import press_ctrl_c_at_render
from scipy.spatial.transform import Rotation
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from taichi_3dgs import RasterizerConfig
from taichi_3dgs.data.cameras import read_cameras_json, write_cameras_json
from taichi_3dgs.data.views import load_views
from taichi_3dgs.scene.model import load_initial_model
from taichi_3dgs.rotations import rotation_vector_to_matrix
from taichi_3dgs.scene.parquet import read_scene_parquet
from taichi_3dgs.training.camera_optimization import EXPOSURE_KEY, POSE_KEY, CameraOptimization
from taichi_3dgs.training.exposure_file import read_exposure_json
from taichi_3dgs.training.checkpoint import latest_checkpoint, load_checkpoint
from taichi_3dgs.training.config import ConfigError, PoseOptimizationConfig, parse_train_config
from taichi_3dgs.training.dataset import scene_extent
from taichi_3dgs.training.evaluation import evaluate, render_model_view
from taichi_3dgs.training.pose_corrections import PoseCorrections, correction_transform, corrected_viewmat
from taichi_3dgs.training.losses import l1_loss
from taichi_3dgs.training.trainer import DegenerateTrainingError, train


def in_world_units(corrections: np.ndarray, extent: float) -> np.ndarray:
    """Learnt corrections [C, 6] (t / extent, w) as (t, w)."""
    return corrections * np.array([extent] * 3 + [1.0] * 3)


# --- the SE(3) correction -------------------------------------------------------------------


def test_zero_correction_is_the_identity():
    assert torch.equal(correction_transform(torch.zeros(6, dtype=torch.float64)), torch.eye(4, dtype=torch.float64))
    viewmat = torch.tensor(np.linalg.inv(random_pose(np.random.default_rng(0))), dtype=torch.float32)
    assert torch.equal(corrected_viewmat(viewmat, torch.zeros(6)), viewmat)


def test_rotation_part_matches_scipy_rotation_from_rotvec():
    rng = np.random.default_rng(1)
    axes = rng.normal(size=(64, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = np.concatenate([[1e-9, 1e-4, 0.0175], rng.uniform(0.0, np.pi, 60), [np.pi - 1e-6]])
    rotvecs = axes * angles[:, None]
    ours = rotation_vector_to_matrix(torch.tensor(rotvecs, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(ours, Rotation.from_rotvec(rotvecs).as_matrix(), rtol=0, atol=1e-12)


def test_correction_acts_in_the_camera_frame():
    rng = np.random.default_rng(2)
    pose = random_pose(rng)
    translation, rotvec = rng.normal(size=3) * 0.1, rng.normal(size=3) * 0.05
    correction = torch.tensor(np.concatenate([translation, rotvec]), dtype=torch.float64)
    viewmat = torch.tensor(np.linalg.inv(pose), dtype=torch.float64)
    corrected_pose = np.linalg.inv(corrected_viewmat(viewmat, correction).numpy())
    # The camera turns about its own centre by rotvec expressed in camera axes, and its centre
    # moves by the camera-frame translation.
    np.testing.assert_allclose(corrected_pose[:3, :3], pose[:3, :3] @ Rotation.from_rotvec(rotvec).as_matrix(),
                               rtol=0, atol=1e-12)
    np.testing.assert_allclose(corrected_pose[:3, 3], pose[:3, 3] + pose[:3, :3] @ translation, rtol=0, atol=1e-12)
    np.testing.assert_allclose(corrected_pose[3], [0, 0, 0, 1], rtol=0, atol=1e-15)


@pytest.mark.parametrize("at_zero", [True, False])
def test_corrected_viewmat_gradient_matches_finite_differences(at_zero):
    rng = np.random.default_rng(3)
    viewmat = torch.tensor(np.linalg.inv(random_pose(rng)), dtype=torch.float64, requires_grad=True)
    start = np.zeros(6) if at_zero else rng.normal(size=6) * 0.2
    correction = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(corrected_viewmat, (viewmat, correction))


def test_a_render_gives_only_its_camera_a_pose_gradient(demo):
    records = read_cameras_json(demo / "train.json")
    views = load_views(records[:3], 1, 1600, "cpu")
    model = load_initial_model(demo / "point_cloud.parquet", initial_opacity=0.8)
    poses = PoseCorrections(3, PoseOptimizationConfig(), 100, 1.0, "cpu")
    view = dataclasses.replace(views[1], viewmat=poses.viewmat(1, views[1].viewmat))
    out = render_model_view(model, view, RasterizerConfig(), torch.zeros(3))
    l1_loss(out.image, views[1].target(torch.zeros(3)), None).backward()
    grad = poses.corrections.grad
    assert torch.isfinite(grad).all()
    assert float(grad[1].abs().min()) > 0.0  # every component of the used camera moves the image
    assert torch.equal(grad[[0, 2]], torch.zeros(2, 6))


def test_pose_optimisation_moves_a_perturbed_camera_toward_the_truth(demo):
    """1 degree and 1 % of the scene extent off; 40 Adam steps on the correction alone."""
    records = read_cameras_json(demo / "train.json")
    model = load_initial_model(demo / "point_cloud.parquet", initial_opacity=0.8)
    truth = load_views(records[5:6], 1, 1600, "cpu")[0]
    background = torch.zeros(3)
    with torch.no_grad():
        target = render_model_view(model, truth, RasterizerConfig(), background).image
    true_pose = records[5].T_pointcloud_camera
    perturbed_pose = true_pose @ perturbation(1.0, 0.01 * DEMO_EXTENT)
    perturbed = dataclasses.replace(truth, viewmat=torch.tensor(np.linalg.inv(perturbed_pose), dtype=torch.float32))
    steps = 40
    poses = PoseCorrections(1, PoseOptimizationConfig(learning_rate=2e-3, learning_rate_final=2e-4, weight_decay=0.0),
                            steps, DEMO_EXTENT, "cpu")

    def errors() -> tuple[float, float]:
        correction = correction_transform(poses.world_corrections(torch.float64).detach()[0]).numpy()
        return pose_error(perturbed_pose @ correction, true_pose)

    rotation_before, translation_before = errors()
    losses = []
    for step in range(1, steps + 1):
        poses.set_learning_rate(step)
        view = dataclasses.replace(perturbed, viewmat=poses.viewmat(0, perturbed.viewmat))
        loss = l1_loss(render_model_view(model, view, RasterizerConfig(), background).image, target, None)
        loss.backward()
        poses.step()
        losses.append(loss.item())
    rotation_after, translation_after = errors()
    assert rotation_before == pytest.approx(1.0) and translation_before == pytest.approx(0.01 * DEMO_EXTENT)
    # Measured: 1.0 -> 0.31 degrees, 0.047 -> 0.017; what is left is mostly the slow orbit about
    # the scene (a turn plus a shift that move the image alike).
    assert rotation_after < 0.5 * rotation_before
    assert translation_after < 0.5 * translation_before
    assert np.mean(losses[-5:]) < 0.3 * losses[0]


@pytest.fixture(scope="module")
def perturbed_training(rendered_scene, tmp_path_factory):
    """Five training cameras of rendered_scene, each turned by 1 degree about a random axis and
    moved by 1 % of the extent in a random direction (seed 0), trained 200 steps (40 per camera)
    with pose optimisation (rate 2e-3 -> 2e-4); returns (true, perturbed, refined) records."""
    root = tmp_path_factory.mktemp("perturbed")
    truth = read_cameras_json(rendered_scene / "true_train.json")[:5]
    rng = np.random.default_rng(0)
    perturbed = []
    for record in truth:
        delta = np.eye(4)
        axis, direction = rng.normal(size=(2, 3))
        delta[:3, :3] = Rotation.from_rotvec(np.radians(1.0) * axis / np.linalg.norm(axis)).as_matrix()
        delta[:3, 3] = 0.01 * DEMO_EXTENT * direction / np.linalg.norm(direction)
        perturbed.append(dataclasses.replace(record, T_pointcloud_camera=record.T_pointcloud_camera @ delta))
    write_cameras_json(root / "train.json", perturbed)
    config = camera_config(rendered_scene, root / "out", False, **{
        "train-dataset-json-path": str(root / "train.json"), "pose-optimization": True,
        "num-iterations": 200, "val-interval": 200,
        "pose-optimization-config": {"learning-rate": 2e-3, "learning-rate-final": 2e-4}})
    train(config)
    return truth, perturbed, read_cameras_json(config.output_model_dir / "train.json")


def test_training_with_pose_optimisation_halves_the_median_pose_errors(perturbed_training):
    truth, perturbed, refined = perturbed_training

    def median_errors(records) -> np.ndarray:
        errors = [pose_error(r.T_pointcloud_camera, t.T_pointcloud_camera) for r, t in zip(records, truth)]
        return np.median(np.array(errors), axis=0)

    rotation_before, translation_before = median_errors(perturbed)
    rotation_after, translation_after = median_errors(refined)
    assert rotation_before == pytest.approx(1.0) and translation_before == pytest.approx(0.01 * DEMO_EXTENT)
    assert rotation_after < 0.5 * rotation_before, (rotation_after, translation_after)
    assert translation_after < 0.5 * translation_before, (rotation_after, translation_after)


def test_mean_correction_is_in_degrees_and_scene_units():
    poses = PoseCorrections(2, PoseOptimizationConfig(), 100, 2.0, "cpu")  # translations learnt in extents of 2
    with torch.no_grad():
        poses.corrections[0] = torch.tensor([1.5, 2.0, 0.0, 0.0, 0.0, np.radians(2.0)])
        poses.corrections[1] = torch.tensor([0.0, 0.0, 0.5, np.radians(4.0), 0.0, 0.0])
    degrees, translation = poses.mean_correction()
    assert degrees == pytest.approx(3.0, rel=1e-6)
    assert translation == pytest.approx(3.0)  # (|(3, 4, 0)| + |(0, 0, 1)|) / 2 scene units


def test_corrected_records_compose_the_pose_and_reload_from_camera_json(demo, tmp_path):
    records = read_cameras_json(demo / "train.json")
    poses = PoseCorrections(len(records), PoseOptimizationConfig(), 100, DEMO_EXTENT, "cpu")
    rng = np.random.default_rng(4)
    with torch.no_grad():
        poses.corrections.copy_(torch.tensor(rng.normal(size=(len(records), 6)) * 0.05))
    corrected = poses.corrected_records(records)
    write_cameras_json(tmp_path / "train.json", corrected)
    reloaded = read_cameras_json(tmp_path / "train.json")
    corrections = in_world_units(poses.corrections.detach().double().numpy(), DEMO_EXTENT)
    for record, back, correction in zip(records, reloaded, corrections):
        np.testing.assert_allclose(back.T_pointcloud_camera, record.T_pointcloud_camera @ scipy_transform(correction),
                                   rtol=0, atol=1e-12)
        rotation_error, translation_error = pose_error(back.T_pointcloud_camera, record.T_pointcloud_camera)
        assert rotation_error == pytest.approx(np.degrees(np.linalg.norm(correction[3:])), rel=1e-9)
        assert translation_error == pytest.approx(np.linalg.norm(correction[:3]), rel=1e-9)
        assert (back.image_path, back.width, back.height) == (record.image_path, record.width, record.height)
        assert np.array_equal(back.K, record.K)


def test_pose_state_dict_round_trips_and_refuses_another_camera_count():
    poses = PoseCorrections(3, PoseOptimizationConfig(learning_rate=1e-2), 100, 1.0, "cpu")
    poses.corrections.sum().backward()
    poses.step()
    restored = PoseCorrections(3, PoseOptimizationConfig(learning_rate=1e-2), 100, 1.0, "cpu")
    restored.load_state_dict(poses.state_dict())
    assert torch.equal(restored.corrections, poses.corrections)
    assert torch.equal(restored.optimizer.state_dict()["state"][0]["exp_avg"],
                       poses.optimizer.state_dict()["state"][0]["exp_avg"])
    with pytest.raises(ValueError, match=r"'corrections' is \(3, 6\); expected a tensor of shape \(4, 6\)"):
        PoseCorrections(4, PoseOptimizationConfig(), 100, 1.0, "cpu").load_state_dict(poses.state_dict())


def test_learning_rate_decays_log_linearly_from_the_configured_rates():
    poses = PoseCorrections(1, PoseOptimizationConfig(learning_rate=1e-5, learning_rate_final=1e-7), 1000, 1.0, "cpu")
    rates = []
    for step in (0, 500, 1000, 2000):
        poses.set_learning_rate(step)
        rates.append(poses.optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([1e-5, 1e-6, 1e-7, 1e-7], rel=1e-12)


def test_corrections_stay_zero_until_the_start_iteration_and_adam_starts_there():
    config = PoseOptimizationConfig(learning_rate=1e-2, learning_rate_final=1e-2, start_iteration=3)
    poses = PoseCorrections(2, config, 100, 1.0, "cpu")
    fresh = PoseCorrections(2, dataclasses.replace(config, start_iteration=0), 100, 1.0, "cpu")
    gradient = torch.tensor([[1.0, -2.0, 0.5, 0.1, 0.2, -0.3], [0.0] * 6])
    for step in range(1, 6):
        poses.set_learning_rate(step)
        (poses.corrections * gradient).sum().backward()
        poses.step()
        if step <= 3:
            assert torch.equal(poses.corrections, torch.zeros(2, 6)) and not poses.optimizer.state, step
            assert poses.corrections.grad is None
        else:  # from step 4 on: the steps of an Adam that started at step 4
            fresh.set_learning_rate(step)
            (fresh.corrections * gradient).sum().backward()
            fresh.step()
            torch.testing.assert_close(poses.corrections, fresh.corrections, rtol=0, atol=0)
    assert float(poses.corrections[0].abs().min()) > 0.0


# --- config ---------------------------------------------------------------------------------


def test_pose_optimisation_is_off_by_default_with_gsplat_rates():
    config = parse_train_config({})
    assert config.pose_optimization is False
    assert config.pose_optimization_config == PoseOptimizationConfig(1e-5, 1e-7, 1e-6)


@pytest.mark.parametrize("section, message", [
    ({"learning-rate": 0.0}, "'pose-optimization-config.learning-rate' must be > 0"),
    ({"learning-rate-final": -1.0}, "'pose-optimization-config.learning-rate-final' must be > 0"),
    ({"weight-decay": -1e-6}, "'pose-optimization-config.weight-decay' must be >= 0"),
    ({"learning-rte": 1e-4}, "unknown key 'learning-rte' in section 'pose-optimization-config'; did you mean "
                             "'learning-rate'"),
])
def test_bad_pose_optimisation_settings_are_refused_naming_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_train_config({"pose-optimization-config": section}, "cfg.yaml")


# --- the trainer ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def features_run(rendered_scene, tmp_path_factory):
    """The 42-step run with pose optimisation and exposure compensation on."""
    config = camera_config(rendered_scene, tmp_path_factory.mktemp("features"), True)
    return config, train(config)


def test_refined_train_json_holds_the_corrected_training_cameras(features_run, rendered_scene):
    config, _ = features_run
    out = config.output_model_dir
    given = read_cameras_json(rendered_scene / "train.json")
    refined = read_cameras_json(out / "train.json")
    learnt = load_checkpoint(latest_checkpoint(out), "cpu")[POSE_KEY]["corrections"].double().numpy()
    corrections = in_world_units(learnt, scene_extent(given))
    assert [r.image_path for r in refined] == [r.image_path for r in given]
    for record, back, correction in zip(given, refined, corrections):
        np.testing.assert_allclose(back.T_pointcloud_camera, record.T_pointcloud_camera @ scipy_transform(correction),
                                   rtol=0, atol=1e-12)
    assert np.abs(corrections).max() > 1e-4  # the run did learn corrections
    # The perturbed camera moved toward its true pose (measured 1.0 -> 0.86 degrees).
    truth = read_cameras_json(rendered_scene / "true_train.json")[PERTURBED_CAMERA].T_pointcloud_camera
    before = pose_error(given[PERTURBED_CAMERA].T_pointcloud_camera, truth)
    after = pose_error(refined[PERTURBED_CAMERA].T_pointcloud_camera, truth)
    assert after[0] < 0.95 * before[0]


def test_validation_and_saved_scenes_ignore_poses_and_exposure(features_run):
    """metrics.json's val scores are those of the saved final scene from the val cameras as
    given, rendered by the evaluation every renderer uses; the scene file has no extra column."""
    config, result = features_run
    out = config.output_model_dir
    scene = load_initial_model(out / "final_scene.parquet")
    val_views = load_views(read_cameras_json(config.val_dataset_json_path), 1, 1600, "cpu")
    independent = evaluate(scene, val_views, RasterizerConfig(), torch.zeros(3))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["val"]["psnr"] == pytest.approx(independent.psnr, abs=1e-9)
    assert result.evaluation.psnr == pytest.approx(independent.psnr, abs=1e-9)
    assert pq.read_schema(out / "final_scene.parquet").names == pq.read_schema(config.pointcloud_parquet_path).names


def test_tensorboard_logs_the_mean_pose_correction(features_run):
    config, _ = features_run
    events = EventAccumulator(str(config.summary_writer_log_dir))
    events.Reload()
    learnt = load_checkpoint(latest_checkpoint(config.output_model_dir), "cpu")[POSE_KEY]["corrections"]
    corrections = in_world_units(learnt.double().numpy(), scene_extent(read_cameras_json(config.train_dataset_json_path)))
    degrees = [e.value for e in events.Scalars("pose/mean_rotation_correction_deg")]
    translation = [e.value for e in events.Scalars("pose/mean_translation_correction")]
    assert len(degrees) == len(translation) == 6  # every 7 steps
    assert degrees[-1] == pytest.approx(np.degrees(np.linalg.norm(corrections[:, 3:], axis=1).mean()), rel=1e-5)
    assert translation[-1] == pytest.approx(np.linalg.norm(corrections[:, :3], axis=1).mean(), rel=1e-5)


def test_with_both_features_off_the_hooks_change_nothing(demo, tmp_path):
    config = parse_train_config({"train-dataset-json-path": str(demo / "train.json"),
                                 "pointcloud-parquet-path": str(demo / "point_cloud.parquet")})
    records = read_cameras_json(demo / "train.json")
    views = load_views(records, 1, 1600, "cpu")
    hooks = CameraOptimization(config, records, views, "cpu")
    image = torch.rand(64, 64, 3)
    assert hooks.training_view(3, views[3]) is views[3]
    assert hooks.compensate(3, image) is image
    assert hooks.parameters() == [] and hooks.checkpoint_entries() == {}
    hooks.set_learning_rates(1)
    hooks.step()
    hooks.write_outputs(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_run_with_both_features_off_writes_and_logs_nothing_of_them(rendered_scene, tmp_path):
    config = camera_config(rendered_scene, tmp_path / "off", False, **{"num-iterations": 7, "val-interval": 7})
    train(config)
    out = config.output_model_dir
    assert not (out / "exposure.json").exists()
    assert read_cameras_json(out / "train.json") == read_cameras_json(rendered_scene / "train.json")
    checkpoint = load_checkpoint(latest_checkpoint(out), "cpu")
    assert POSE_KEY not in checkpoint and EXPOSURE_KEY not in checkpoint
    events = EventAccumulator(str(config.summary_writer_log_dir))
    events.Reload()
    assert not [tag for tag in events.Tags()["scalars"] if tag.startswith("pose/")]


def test_resume_restores_poses_and_exposures_as_an_uninterrupted_run(features_run, rendered_scene, tmp_path,
                                                                       monkeypatch):
    uninterrupted_config, uninterrupted = features_run
    config = camera_config(rendered_scene, tmp_path / "b", True)
    press_ctrl_c_at_render(monkeypatch, 17)
    stopped = train(config)
    monkeypatch.undo()
    assert stopped.interrupted and stopped.step == 17
    resumed = train(config, resume=True)
    assert not resumed.interrupted and resumed.step == 42

    a, b = uninterrupted_config.output_model_dir, config.output_model_dir
    for record_a, record_b in zip(read_cameras_json(a / "train.json"), read_cameras_json(b / "train.json")):
        np.testing.assert_allclose(record_b.T_pointcloud_camera, record_a.T_pointcloud_camera, rtol=0, atol=1e-6)
    exposure_a, exposure_b = read_exposure_json(a / "exposure.json"), read_exposure_json(b / "exposure.json")
    assert list(exposure_b) == list(exposure_a)
    for name in exposure_a:
        np.testing.assert_allclose(exposure_b[name], exposure_a[name], rtol=0, atol=1e-6)
    scene_a = read_scene_parquet(a / "final_scene.parquet")
    scene_b = read_scene_parquet(b / "final_scene.parquet")
    for name in ("means", "quats", "log_scales", "opacity_logits", "sh_coeffs"):
        assert torch.allclose(getattr(scene_a, name), getattr(scene_b, name), rtol=0, atol=1e-6), name
    assert resumed.evaluation.psnr == pytest.approx(uninterrupted.evaluation.psnr, abs=1e-6)


def test_resume_refuses_a_checkpoint_written_without_pose_optimisation(rendered_scene, tmp_path):
    config = camera_config(rendered_scene, tmp_path / "run", False, **{"num-iterations": 7, "val-interval": 7})
    train(config)
    with pytest.raises(ValueError, match=r"was written with pose-optimization False \(<config> says True\)"):
        train(camera_config(rendered_scene, tmp_path / "run", False, **{"num-iterations": 7, "val-interval": 7,
                                                                        "pose-optimization": True}), resume=True)


def test_a_runaway_pose_learning_rate_stops_the_run_naming_the_camera_and_the_key(rendered_scene, tmp_path):
    """Issue 27 item 4: at a (legal, absurd) rate of 1000 the cameras left the scene unnoticed."""
    config = camera_config(rendered_scene, tmp_path / "out", False, **{
        "num-iterations": 12, "val-interval": 12, "checkpoint-interval": 100, "pose-optimization": True,
        "logging": {"progress-bar": False, "log-loss-interval": 4},
        "pose-optimization-config": {"learning-rate": 1000.0, "learning-rate-final": 1000.0}})
    with pytest.raises(DegenerateTrainingError, match=r"step 4: pose optimisation (moved by|turned by) .* training "
                                                      r"camera \d+ .*pose-optimization-config.learning-rate \(1000\)"):
        train(config)
    assert latest_checkpoint(config.output_model_dir) is None


def test_a_correction_beyond_any_capture_error_is_named_and_one_within_is_not(demo):
    records = read_cameras_json(demo / "train.json")[:3]
    config = parse_train_config({"pose-optimization": True}, "run.yaml")
    hooks = CameraOptimization(config, records, load_views(records, 1, 1600, "cpu"), "cpu")
    with torch.no_grad():
        hooks.poses.corrections[1] = torch.tensor([0.3, 0.0, 0.0, np.radians(20.0), 0.0, 0.0])
    assert hooks.runaway_pose() is None
    with torch.no_grad():
        hooks.poses.corrections[2, 4] = np.radians(31.0)
    assert "turned by 31 degrees training camera 2" in hooks.runaway_pose()
    with torch.no_grad():
        hooks.poses.corrections[0, 0] = 0.6
    assert "moved by 0.6 scene extents training camera 0" in hooks.runaway_pose()
