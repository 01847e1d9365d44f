"""Degenerate training, in-process on the tiny demo scene: a scene pruned to nothing or diverged to
NaN stops with the step and keeps the last good checkpoint; a first render that shows nothing
warns; a second Ctrl-C leaves no partial file and no lock."""
from __future__ import annotations

import signal
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from test_trainer import demo_config
from test_trainer_faults import scene, write_config  # noqa: F401 (scene is a fixture)
from torch.utils.tensorboard import SummaryWriter

from taichi_3dgs.data.point_cloud import read_point_cloud, write_point_cloud
from taichi_3dgs.scene.model import GaussianModel, load_initial_model
from taichi_3dgs.scene.parquet import write_scene_parquet
from taichi_3dgs.training.checkpoint import latest_checkpoint, load_checkpoint
from taichi_3dgs.train_cli import main
from taichi_3dgs.training.run_folder import LOCK_NAME
from taichi_3dgs.training.reporting import log_histograms as _log_histograms
from taichi_3dgs.training.trainer import DegenerateTrainingError, train


def test_a_scene_pruned_to_nothing_stops_naming_the_step_and_keeps_the_last_checkpoint(scene, tmp_path):
    # Every Gaussian starts at opacity 0.1, below the threshold: the first densification (step 2)
    # prunes them all.
    out = tmp_path / "out"
    config = demo_config(scene, out, **{
        "num-iterations": 5, "checkpoint-interval": 1,
        "adaptive-controller-config": {"num-iterations-warm-up": 1, "num-iterations-densify": 2,
                                       "transparent-opacity-threshold": 0.5},
    })
    kept = out / "checkpoints" / "checkpoint_0000001.pt"
    with pytest.raises(DegenerateTrainingError, match=rf"step 2: densification pruned every Gaussian.*"
                                                      rf"transparent-opacity-threshold \(0.5\).*"
                                                      rf"the last checkpoint, {kept}, is kept"):
        train(config)
    assert latest_checkpoint(out) == kept
    assert load_checkpoint(kept, "cpu")["model"]["means"].shape == (500, 3)
    assert not (out / LOCK_NAME).exists()


@pytest.mark.parametrize("log_every, problem", [(1, "the loss is nan"), (10, "parameters became NaN or infinite")])
def test_a_diverged_scene_stops_and_is_not_checkpointed(scene, tmp_path, log_every, problem):
    # Learning rates of 1e20 blow the colours and opacities up in one Adam step: the render of
    # step 2 is NaN. The loss is checked at log steps, the parameters before each checkpoint.
    out = tmp_path / "out"
    config = demo_config(scene, out, **{
        "num-iterations": 5, "checkpoint-interval": 1, "logging": {"progress-bar": False, "log-loss-interval": log_every},
        "learning-rates": {"opacity": 1e20, "sh-dc": 1e20},
    })
    with pytest.raises(DegenerateTrainingError, match=rf"step 2: {problem}.*checkpoint_0000001.pt, is kept"):
        train(config)
    checkpoint = load_checkpoint(latest_checkpoint(out), "cpu")
    assert checkpoint["step"] == 1
    assert all(torch.isfinite(t).all() for t in checkpoint["model"].values())


def test_a_point_cloud_out_of_every_view_warns_at_the_first_step(scene, tmp_path):
    cloud = read_point_cloud(scene / "point_cloud.parquet")
    cloud.xyz = cloud.xyz + np.float32(1000.0)  # far outside the ring of cameras
    moved = tmp_path / "moved.parquet"
    write_point_cloud(moved, cloud)
    config = demo_config(scene, tmp_path / "out", **{"num-iterations": 10, "pointcloud-parquet-path": str(moved),
                                                    "logging": {"progress-bar": False, "log-loss-interval": 5}})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train(config)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1, messages  # warned once: not again for the blank renders that follow
    assert messages[0].startswith("step 1: none of the 500 Gaussians is visible from training view view_0")


def absurd_scales(scene: Path, tmp_path: Path) -> dict:
    """Keys warm-starting from the demo's Gaussians grown to e^30 (1e13 x the scene's size)."""
    gaussians = load_initial_model(scene / "point_cloud.parquet").to_scene()
    gaussians.log_scales.fill_(30.0)
    write_scene_parquet(tmp_path / "huge.parquet", gaussians)
    return {"pointcloud-parquet-path": str(tmp_path / "huge.parquet")}


@pytest.mark.parametrize("keys, problem", [
    (lambda scene, tmp_path: {"gaussian-point-cloud-scene-config": {"initial-opacity": 0.001}},
     "step 1: every opacity is below the rasterizer's alpha threshold 0.003922 (largest "
     "sigmoid(opacity_logit) = 0.001)"),
    (absurd_scales, "step 1: 500 of 500 Gaussians have a scale above 1e+06 x the scene extent"),
], ids=["transparent", "huge"])
def test_a_first_render_that_cannot_learn_warns(scene, tmp_path, keys, problem):
    config = demo_config(scene, tmp_path / "out", **{"num-iterations": 1, **keys(scene, tmp_path)})
    with pytest.warns(UserWarning) as caught:
        train(config)
    assert any(str(w.message).startswith(problem) for w in caught), [str(w.message) for w in caught]


def test_a_blank_render_later_in_the_run_warns_once(scene, tmp_path, monkeypatch):
    # The first render sees the scene; from step 2 on every Gaussian is made transparent.
    import taichi_3dgs.training.trainer as trainer_module

    real_render = trainer_module.render_model_view
    calls = {"n": 0}

    def fade_out_after_the_first_render(model, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            with torch.no_grad():
                model.opacity_logits.fill_(-30.0)
        return real_render(model, *args, **kwargs)

    monkeypatch.setattr(trainer_module, "render_model_view", fade_out_after_the_first_render)
    config = demo_config(scene, tmp_path / "out", **{"num-iterations": 4, "val-interval": 100,
                                                    "logging": {"progress-bar": False, "log-loss-interval": 2}})
    with pytest.warns(UserWarning) as caught:
        train(config)
    messages = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert len(messages) == 1, messages
    assert messages[0].startswith("step 2: the render of training view view_0")
    assert "is blank" in messages[0]


def test_a_normal_first_render_warns_nothing(scene, tmp_path):
    config = demo_config(scene, tmp_path / "out", **{"num-iterations": 2})
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        train(config)


def test_histograms_skip_the_tensors_of_an_empty_scene(tmp_path):
    empty = GaussianModel(torch.zeros(0, 3), torch.zeros(0, 4), torch.zeros(0, 3), torch.zeros(0),
                          torch.zeros(0, 16, 3))
    writer = SummaryWriter(str(tmp_path))
    _log_histograms(writer, empty, 1)
    _log_histograms(writer, GaussianModel(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 3), torch.zeros(2),
                                          torch.zeros(2, 16, 3)), 2)
    writer.close()
    events = EventAccumulator(str(tmp_path), size_guidance={"histograms": 0})
    events.Reload()
    assert [e.step for e in events.Histograms("params/means")] == [2]


def test_a_second_ctrl_c_during_a_checkpoint_write_leaves_no_partial_file_nor_lock(scene, tmp_path, monkeypatch,
                                                                                      capsys):
    out = tmp_path / "out"
    config = write_config(tmp_path, scene, out, **{"num-iterations": 5})
    real_write = Path.write_bytes
    saves = {"n": 0}

    def ctrl_c_twice_halfway_through_the_second_checkpoint(path, data):
        # The checkpoint is serialised in memory, then written to its temporary file here.
        if ".checkpoint_" in path.name:
            saves["n"] += 1
            if saves["n"] == 2:
                real_write(path, bytes(data)[:len(data) // 2])
                signal.raise_signal(signal.SIGINT)  # stop after this step
                signal.raise_signal(signal.SIGINT)  # abort now
        return real_write(path, data)

    monkeypatch.setattr(Path, "write_bytes", ctrl_c_twice_halfway_through_the_second_checkpoint)
    code = main(["--train_config", str(config)])
    monkeypatch.undo()

    assert code == 130
    captured = capsys.readouterr()
    assert "gaussian_point_train.py: interrupted" in captured.err and "Traceback" not in captured.err
    assert not list(out.rglob("*.tmp"))
    assert not (out / LOCK_NAME).exists()
    assert load_checkpoint(latest_checkpoint(out), "cpu")["step"] == 1
