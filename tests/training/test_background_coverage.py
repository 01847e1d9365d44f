"""The trainer's background coverage: `initial-points` (extra initial Gaussians) and the default
strategy's `absgrad` densification, on the demo scene at 64 x 64 px."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import taichi_3dgs.training.run_setup as trainer_module
from taichi_3dgs.data.camera_checks import project_points
from taichi_3dgs.data.cameras import read_cameras_json
from taichi_3dgs.data.demo_scene import DemoSceneSpec, make_demo_scene
from taichi_3dgs.data.initial_points import view_centre
from taichi_3dgs.data.point_cloud import read_point_cloud
from taichi_3dgs.scene.model import GaussianModel
from taichi_3dgs.scene.ply import write_ply
from taichi_3dgs.training.config import ConfigError, load_train_config
from taichi_3dgs.training.dataset import scene_centre, scene_extent
from taichi_3dgs.training.trainer import train
from test_trainer import demo_config

VIEW_VOLUME, SHELL = 300, 200
# Densification once, at step 20, with the same threshold for both statistics.
DENSIFY_ONCE = {"num-iterations": 21, "val-interval": 21, "checkpoint-interval": 21,
                "adaptive-controller-config": {"num-iterations-warm-up": 10, "num-iterations-densify": 20,
                                               "densify-until-iteration": 21, "absgrad-threshold": 2e-4}}


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return make_demo_scene(tmp_path_factory.mktemp("demo"), DemoSceneSpec(width=64, height=64, num_points=1500))


class _Loaded(Exception):
    """Raised once the trainer has its initial model, when the test needs no training."""


def _train_capturing_the_initial_model(config, monkeypatch, stop=False):
    """Train `config` (or stop once the initial model is loaded, before anything is written);
    return (initial model parameters, TrainResult or None)."""
    captured = {}
    load = trainer_module.load_initial_model

    def capture(*args, **kwargs):
        model = load(*args, **kwargs)
        captured.update({name: p.detach().clone() for name, p in model.parameter_dict().items()})
        if stop:
            raise _Loaded
        return model

    monkeypatch.setattr(trainer_module, "load_initial_model", capture)
    try:
        return captured, train(config)
    except _Loaded:
        return captured, None


@pytest.fixture(scope="module")
def runs(scene, tmp_path_factory):
    """Two runs from the same extra initial points, densifying on absgrad and on the plain gradient."""
    results = {}
    with pytest.MonkeyPatch.context() as monkeypatch:
        for absgrad in (True, False):
            out = tmp_path_factory.mktemp(f"absgrad_{absgrad}")
            keys = {**DENSIFY_ONCE, "initial-points": {"random-in-view-volume": VIEW_VOLUME, "far-shell": SHELL}}
            keys["adaptive-controller-config"] = {**keys["adaptive-controller-config"], "absgrad": absgrad}
            results[absgrad] = _train_capturing_the_initial_model(demo_config(scene, out, **keys), monkeypatch)
    return results


def test_default_config_initialises_exactly_from_the_point_cloud(scene, tmp_path, monkeypatch):
    config = demo_config(scene, tmp_path, seed=4)
    initial, _ = _train_capturing_the_initial_model(config, monkeypatch, stop=True)
    expected = GaussianModel.from_point_cloud(read_point_cloud(scene / "point_cloud.parquet"), seed=4)
    for name, param in expected.parameter_dict().items():
        assert torch.equal(initial[name], param.detach()), name


def test_initial_points_are_added_in_the_view_volume_and_on_the_far_shell(scene, runs):
    initial, _ = runs[True]
    cloud = read_point_cloud(scene / "point_cloud.parquet")
    n = len(cloud)
    means = initial["means"].numpy()
    assert means.shape == (n + VIEW_VOLUME + SHELL, 3)
    np.testing.assert_array_equal(means[:n], cloud.xyz)
    records = read_cameras_json(scene / "train.json")
    added = means[n:n + VIEW_VOLUME].astype(np.float64)
    seen = np.zeros(VIEW_VOLUME, dtype=bool)
    for record in records:
        u, v, depth = project_points(added, record.viewmat, record.K)
        seen |= (depth > 0) & (u >= 0) & (u < record.width) & (v >= 0) & (v < record.height)
    assert seen.all()
    radius = np.linalg.norm(means[n + VIEW_VOLUME:] - scene_centre(records), axis=1)
    np.testing.assert_allclose(radius, 10.0 * scene_extent(records), rtol=1e-5)  # far-shell-radius default 10
    assert initial["sh_dc"][n:].abs().sum() > 0  # coloured from the images, not all grey 0.5


def test_beyond_cloud_and_camera_shell_points_are_added_to_the_initial_model(scene, tmp_path, monkeypatch):
    keys = {"initial-points": {"beyond-cloud": 120, "camera-shell": 80, "camera-shell-radius": 3.0}}
    initial, _ = _train_capturing_the_initial_model(demo_config(scene, tmp_path, **keys), monkeypatch, stop=True)
    n = len(read_point_cloud(scene / "point_cloud.parquet"))
    means = initial["means"].numpy().astype(np.float64)
    assert means.shape == (n + 200, 3)
    records = read_cameras_json(scene / "train.json")
    seen = np.zeros(120, dtype=bool)
    for record in records:
        u, v, depth = project_points(means[n:n + 120], record.viewmat, record.K)
        seen |= (depth > 0) & (u >= 0) & (u < record.width) & (v >= 0) & (v < record.height)
    assert seen.all()  # each on a training pixel's ray
    centre = view_centre(records)
    distance = np.median([np.linalg.norm(record.camera_center - centre) for record in records])
    np.testing.assert_allclose(np.linalg.norm(means[n + 120:] - centre, axis=1), 3.0 * distance, rtol=1e-5)


def test_absgrad_training_runs_and_densifies_a_superset_of_the_plain_gradient(scene, runs):
    # Until step 20 both runs are the same (the statistic does not change the gradients); at step
    # 20 each Gaussian's mean absolute-gradient norm is >= its mean gradient norm, so with one
    # threshold absgrad clones and splits every Gaussian the plain rule does, and more.
    (initial, with_absgrad), (_, plain) = runs[True], runs[False]
    start = initial["means"].shape[0]
    assert with_absgrad.step == plain.step == 21 and not with_absgrad.interrupted
    assert with_absgrad.num_gaussians > plain.num_gaussians
    assert with_absgrad.num_gaussians > start
    assert with_absgrad.evaluation is not None and np.isfinite(with_absgrad.evaluation.psnr)


def test_initial_points_are_refused_for_a_trained_scene(scene, tmp_path):
    write_ply(tmp_path / "trained.ply", GaussianModel.from_point_cloud(read_point_cloud(scene / "point_cloud.parquet"))
              .to_scene())
    config = demo_config(scene, tmp_path / "out", **{"pointcloud-parquet-path": str(tmp_path / "trained.ply"),
                                                     "initial-points": {"far-shell": 10}})
    with pytest.raises(ValueError, match=r"trained\.ply: is a trained scene.*initial-points"):
        train(config)
    assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.parametrize("text, message", [
    ("initial-points:\n  random-in-view-volume: -5\n", r"'initial-points.random-in-view-volume' must be >= 0"),
    ("initial-points:\n  far-shell: 2.5\n", r"'initial-points.far-shell': expected an integer"),
    ("initial-points:\n  view-volume-depth-quantiles: [0.9, 0.1]\n", r"0 <= near < far <= 1, got \[0.9, 0.1\]"),
    ("initial-points:\n  view-volume-depth-quantiles: [0.1]\n", r"expected a list of 2 numbers"),
    ("initial-points:\n  far-shell-radius: 0.5\n", r"'initial-points.far-shell-radius' must be > 1"),
    ("initial-points:\n  far-shel: 10\n", r"unknown key 'far-shel'.*did you mean 'far-shell'"),
    ("initial-points:\n  beyond-cloud: -1\n", r"'initial-points.beyond-cloud' must be >= 0"),
    ("initial-points:\n  beyond-cloud-depth-quantiles: [0.5, 0.5]\n",
     r"'initial-points.beyond-cloud-depth-quantiles' must be \[near, far\]"),
    ("initial-points:\n  beyond-cloud-far-factor: 0.9\n", r"'initial-points.beyond-cloud-far-factor' must be >= 1"),
    ("initial-points:\n  camera-shell: -2\n", r"'initial-points.camera-shell' must be >= 0"),
    ("initial-points:\n  camera-shell-radius: 1.0\n", r"'initial-points.camera-shell-radius' must be > 1"),
    ("adaptive-controller-config:\n  absgrad-threshold: 0\n", r"'adaptive-controller-config.absgrad-threshold' must"),
    ("adaptive-controller-config:\n  absgrad: 1\n", r"'adaptive-controller-config.absgrad': expected true or false"),
    ("seed: -1\n", r"'seed' must be >= 0"),
])
def test_bad_values_are_refused_naming_the_file_and_the_key(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as info:
        load_train_config(path)
    assert str(path) in str(info.value)
