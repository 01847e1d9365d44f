"""Fitting the training cameras to the scene: poses by Gauss-Newton (`pose-optimization-config.alignment-interval`)
and colour transforms by least squares (`exposure-compensation-config.fit-interval`).

References: numpy's least-squares solutions; the true pose of a demo camera and the true gain of
an image whose targets are the scene's own renders (`camera_scene`); the poses and colours as
given, which a camera the scene already fits must keep bit for bit.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from camera_scene import (  # noqa: F401  (demo, rendered_scene: fixtures)
    DEMO_EXTENT, GAIN, GAIN_IMAGE, OFFSET, PERTURBED_CAMERA, camera_config, demo, perturbation, pose_error, rendered_scene,
)

from taichi_3dgs import RasterizerConfig
from taichi_3dgs.data.cameras import read_cameras_json
from taichi_3dgs.data.views import load_views
from taichi_3dgs.scene.model import load_initial_model
from taichi_3dgs.training.config import (ConfigError, ExposureCompensationConfig, PoseOptimizationConfig,
                                         parse_train_config)
from taichi_3dgs.training.exposure_file import read_exposure_json
from taichi_3dgs.training.exposure_transforms import ExposureTransforms, fit_colour_transform
from taichi_3dgs.training.evaluation import render_model_view
from taichi_3dgs.training.pose_alignment import align_camera, align_cameras
from taichi_3dgs.training.pose_corrections import PoseCorrections, correction_transform
from taichi_3dgs.training.trainer import train


def linear_problem(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A [40, 6] float32 matrix and a [40] vector."""
    rng = np.random.default_rng(seed)
    return (torch.tensor(rng.normal(size=(40, 6)), dtype=torch.float32),
            torch.tensor(rng.normal(size=40), dtype=torch.float32))


def test_align_camera_reaches_the_least_squares_solution_of_a_linear_residual():
    matrix, target = linear_problem(0)
    start = torch.full((6,), 1.0)
    result = align_camera(lambda d: matrix @ d - target, start, torch.full((6,), 1e-3), iterations=4)
    expected = np.linalg.lstsq(matrix.double().numpy(), target.double().numpy(), rcond=None)[0]
    np.testing.assert_allclose(result.correction.numpy(), expected, rtol=0, atol=2e-3)
    best = float(np.mean((matrix.double().numpy() @ expected - target.double().numpy()) ** 2))
    assert result.error == pytest.approx(best, rel=1e-4)
    assert result.initial_error > 2 * result.error and 0.5 < result.gain < 1.0
    assert torch.equal(start, torch.full((6,), 1.0))  # the input is not modified


def test_align_camera_solves_only_the_chosen_coordinates():
    matrix, target = linear_problem(1)
    start = torch.zeros(6)
    result = align_camera(lambda d: matrix @ d - target, start, torch.full((6,), 1e-3), 4, coordinates=(3, 4, 5))
    assert torch.equal(result.correction[:3], torch.zeros(3))
    expected = np.linalg.lstsq(matrix[:, 3:].double().numpy(), target.double().numpy(), rcond=None)[0]
    np.testing.assert_allclose(result.correction[3:].numpy(), expected, rtol=0, atol=2e-3)
    assert result.renders == 1 + 4 * 3 + 4  # each iteration: 3 probes and one accepted step


def test_align_camera_keeps_the_start_where_no_step_lowers_the_error():
    start = torch.tensor([0.1, -0.2, 0.0, 0.05, 0.0, 0.0])
    result = align_camera(lambda d: torch.ones(10), start, torch.full((6,), 1e-3), 3)
    assert torch.equal(result.correction, start) and result.gain == 0.0
    assert result.error == result.initial_error == 1.0


@pytest.fixture(scope="module")
def demo_views(demo):
    """The demo cloud at opacity 0.8, two training views and their renders at the true poses."""
    records = read_cameras_json(demo / "train.json")[4:6]
    model = load_initial_model(demo / "point_cloud.parquet", initial_opacity=0.8)
    views = load_views(records, 1, 1600, "cpu")
    with torch.no_grad():
        targets = [render_model_view(model, view, RasterizerConfig(), torch.zeros(3)).image for view in views]
    return model, records, views, targets


def test_align_cameras_corrects_a_perturbed_camera_and_keeps_a_true_one_exactly(demo_views):
    model, records, views, targets = demo_views
    true_pose = records[1].T_pointcloud_camera
    perturbed_pose = true_pose @ perturbation(1.0, 0.01 * DEMO_EXTENT)
    given = [views[0], dataclasses.replace(views[1], viewmat=torch.tensor(np.linalg.inv(perturbed_pose),
                                                                           dtype=torch.float32))]
    poses = PoseCorrections(2, PoseOptimizationConfig(alignment_interval=1), 10, DEMO_EXTENT, "cpu")

    def residual_for(index):
        def residual(correction):
            view = dataclasses.replace(given[index], viewmat=poses.corrected_viewmat(correction, given[index].viewmat))
            return (render_model_view(model, view, RasterizerConfig(), torch.zeros(3)).image
                    - targets[index]).reshape(-1)
        return residual

    summary = poses.align(residual_for)
    assert summary.kept == 1 and summary.gains[1] > 0.9 and summary.gains[0] < poses.config.alignment_min_gain
    assert torch.equal(poses.corrections[0], torch.zeros(6))
    correction = correction_transform(poses.world_corrections(torch.float64).detach()[1]).numpy()
    rotation, translation = pose_error(perturbed_pose @ correction, true_pose)
    # Measured: 1 degree and 0.047 (1 % of the extent) -> 0.02 degrees and 0.0006.
    assert rotation < 0.1 and translation < 0.1 * 0.01 * DEMO_EXTENT, (rotation, translation)


def test_training_with_alignment_corrects_the_perturbed_camera_and_gained_image_and_no_other(rendered_scene, tmp_path):
    """rendered_scene: its images are the scene's renders from the true cameras, one of which
    (PERTURBED_CAMERA) is given 1 degree and 1 % of the extent off, one image (GAIN_IMAGE) a
    colour gain and offset. One alignment after step 10: poses, then colours."""
    config = camera_config(rendered_scene, tmp_path / "out", True, **{
        "num-iterations": 11, "val-interval": 11,
        "pose-optimization-config": {"alignment-interval": 10, "learning-rate": 1.0},
        "exposure-compensation-config": {"fit-interval": 10, "keep-mean-identity": False, "learning-rate": 1.0}})
    train(config)
    given = read_cameras_json(rendered_scene / "train.json")
    truth = read_cameras_json(rendered_scene / "true_train.json")
    refined = read_cameras_json(config.output_model_dir / "train.json")
    exposure = list(read_exposure_json(config.output_model_dir / "exposure.json").values())
    for index, (before, after) in enumerate(zip(given, refined)):
        if index != PERTURBED_CAMERA:  # the huge Adam rates would move them, were Adam stepped
            np.testing.assert_allclose(after.T_pointcloud_camera, before.T_pointcloud_camera, rtol=0, atol=1e-12)
        if index != GAIN_IMAGE:
            assert np.array_equal(exposure[index], np.eye(3, 4)), index
    rotation, translation = pose_error(refined[PERTURBED_CAMERA].T_pointcloud_camera,
                                       truth[PERTURBED_CAMERA].T_pointcloud_camera)
    # Measured: 1 degree and 0.047 -> 0.047 degrees and 0.0056 (the scene trains with it).
    assert rotation < 0.2 and translation < 0.25 * 0.01 * DEMO_EXTENT, (rotation, translation)
    # The photo is the render times GAIN plus OFFSET, rounded to 8 bits.
    np.testing.assert_allclose(exposure[GAIN_IMAGE], np.concatenate([np.diag(GAIN), OFFSET[:, None]], axis=1),
                               rtol=0, atol=0.02)


def test_fit_colour_transform_matches_numpy_least_squares_and_recovers_an_exact_transform():
    rng = np.random.default_rng(2)
    render = torch.tensor(rng.uniform(0, 1, size=(9, 7, 3)), dtype=torch.float32)
    noisy = torch.tensor(rng.uniform(0, 1, size=(9, 7, 3)), dtype=torch.float32)
    result = fit_colour_transform(render, noisy)
    design = np.concatenate([render.double().numpy().reshape(-1, 3), np.ones((63, 1))], axis=1)
    expected, residual = np.linalg.lstsq(design, noisy.double().numpy().reshape(-1, 3), rcond=None)[:2]
    np.testing.assert_allclose(result.transform.numpy(), expected.T, rtol=0, atol=1e-5)
    assert result.error == pytest.approx(residual.sum() / 189, rel=1e-6)
    assert result.identity_error == pytest.approx(float(((render.double() - noisy.double()) ** 2).mean()), rel=1e-9)

    transform = torch.tensor([[0.8, 0.1, 0.0, 0.05], [0.0, 1.2, 0.0, -0.02], [0.1, 0.0, 0.9, 0.0]])
    photo = render @ transform[:, :3].T + transform[:, 3]
    mask = torch.ones(9, 7, dtype=torch.bool)
    mask[:3] = False
    photo[:3] = 5.0  # ignored pixels
    exact = fit_colour_transform(render, photo, mask)
    np.testing.assert_allclose(exact.transform.numpy(), transform.numpy(), rtol=0, atol=1e-5)
    assert exact.gain == pytest.approx(1.0, abs=1e-6)


def test_exposure_fit_keeps_the_identity_below_the_gain_and_then_the_mean_at_the_identity():
    rng = np.random.default_rng(3)
    renders = [torch.tensor(rng.uniform(0, 1, size=(8, 8, 3)), dtype=torch.float32) for _ in range(3)]
    photos = [renders[0] + 0.01 * torch.tensor(rng.normal(size=(8, 8, 3)), dtype=torch.float32),  # noise only
              renders[1] * 0.5 + 0.1, renders[2] * 1.5]

    def fitted(keep_mean_identity: bool) -> torch.Tensor:
        transforms = ExposureTransforms(["a", "b", "c"], ExposureCompensationConfig(
            fit_interval=1, keep_mean_identity=keep_mean_identity), 10, "cpu")
        gains = transforms.fit(lambda index: (renders[index], photos[index], None))
        assert gains[0] < 0.5 < min(gains[1:])
        return transforms.transforms.detach()

    free = fitted(False)
    assert torch.equal(free[0], torch.eye(3, 4))
    np.testing.assert_allclose(free[1].numpy(), 0.5 * np.eye(3, 4) + np.array([[0, 0, 0, 0.1]] * 3), atol=1e-5)
    np.testing.assert_allclose(free[2].numpy(), 1.5 * np.eye(3, 4), atol=1e-5)
    centred = fitted(True)
    np.testing.assert_allclose(centred.mean(dim=0).numpy(), np.eye(3, 4), atol=1e-6)
    np.testing.assert_allclose((centred - free).numpy(), np.broadcast_to((centred - free)[0].numpy(), (3, 3, 4)),
                               atol=1e-6)  # one shift for all


@pytest.mark.parametrize("section, key", [("pose-optimization-config", "alignment-min-gain"),
                                          ("exposure-compensation-config", "fit-min-gain")])
def test_min_gains_must_be_below_one(tmp_path, section, key):
    with pytest.raises(ConfigError, match=rf"{key}.*in \[0, 1\)"):
        parse_train_config({section: {key: 1.0}}, "t.yaml", tmp_path)
