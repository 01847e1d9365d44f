"""End-to-end training on the procedural demo scene (128 x 128 px, 21 train + 3 val views), on CPU."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT
from lpips_reference import random_lpips_weights, reference_lpips, write_random_lpips_weights
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import taichi_3dgs.training.trainer as trainer_module
from taichi_3dgs.data.cameras import read_cameras_json
from taichi_3dgs.data.demo_scene import DemoSceneSpec, make_demo_scene
from taichi_3dgs.data.views import load_views
from taichi_3dgs.scene.parquet import TrainingResolution, read_scene_parquet, read_training_resolution
from taichi_3dgs.scene.ply import read_ply
from taichi_3dgs.training.config import ConfigError, load_train_config, parse_train_config
from taichi_3dgs.training.dataset import scene_extent
from taichi_3dgs.training.evaluation import evaluate, render_model_view
from taichi_3dgs.training.optimization import means_learning_rate
from taichi_3dgs.training.trainer import train

from taichi_3dgs import RasterizerConfig
from taichi_3dgs.scene.model import GaussianModel, load_initial_model


@pytest.fixture(scope="module")
def demo_scene(tmp_path_factory) -> Path:
    return make_demo_scene(tmp_path_factory.mktemp("demo"), DemoSceneSpec())


def demo_config(scene: Path, out: Path, point_cloud: str = "point_cloud.parquet", **overrides):
    """A config training the prepared folder `scene` (train.json, val.json, `point_cloud`) into
    `out` (logs in out/logs, no progress bar), top-level YAML keys overridden."""
    data = {
        "train-dataset-json-path": str(scene / "train.json"),
        "val-dataset-json-path": str(scene / "val.json"),
        "pointcloud-parquet-path": str(scene / point_cloud),
        "output-model-dir": str(out),
        "summary-writer-log-dir": str(out / "logs"),
        "logging": {"progress-bar": False},
    }
    data.update(overrides)
    return parse_train_config(data, "test config", out)


@pytest.fixture(scope="module")
def short_run(demo_scene, tmp_path_factory):
    """300 steps with densification between steps 100 and 250, evaluated every 150 steps."""
    out = tmp_path_factory.mktemp("run")
    config = demo_config(demo_scene, out, **{
        "num-iterations": 300, "val-interval": 150, "checkpoint-interval": 150,
        "adaptive-controller-config": {"num-iterations-warm-up": 100, "densify-until-iteration": 250},
    })
    return config, train(config)


def train_view_psnr(model: GaussianModel, config) -> float:
    views = load_views(read_cameras_json(config.train_dataset_json_path), 1, 1600, "cpu")
    return evaluate(model, views, RasterizerConfig(), torch.zeros(3)).psnr


def test_training_loss_decreases(short_run):
    config, _ = short_run
    events = EventAccumulator(str(config.summary_writer_log_dir))
    events.Reload()
    losses = [e.value for e in events.Scalars("train/loss")]
    assert len(losses) == 30  # every 10 steps
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:3]) / 3


def test_train_view_psnr_rises_above_threshold(short_run):
    config, _ = short_run
    initial = train_view_psnr(load_initial_model(config.pointcloud_parquet_path), config)
    final = train_view_psnr(load_initial_model(config.output_model_dir / "final_scene.parquet"), config)
    assert final > 22.0
    assert final > initial + 8.0


def test_densification_changes_the_gaussian_count(short_run):
    config, result = short_run
    assert result.num_gaussians != DemoSceneSpec().num_points
    assert read_scene_parquet(config.output_model_dir / "final_scene.parquet").num_gaussians == result.num_gaussians


def test_outputs_are_readable_by_the_scene_readers(short_run):
    config, result = short_run
    out = config.output_model_dir
    final = read_scene_parquet(out / "final_scene.parquet")
    ply = read_ply(out / "point_cloud.ply")
    assert torch.equal(ply.means, final.means)
    assert torch.equal(ply.sh_coeffs, final.sh_coeffs)
    assert read_scene_parquet(out / "scene_150.parquet").num_gaussians > 0
    assert not (out / "scene_300.parquet").exists()  # the last step's scene is final_scene.parquet
    assert load_train_config(out / "train_config.yaml") == config
    assert len(read_cameras_json(out / "train.json")) == 21
    assert len(read_cameras_json(out / "val.json")) == 3


def test_metrics_json_holds_the_last_evaluation(short_run):
    config, result = short_run
    metrics = json.loads((config.output_model_dir / "metrics.json").read_text())
    assert metrics["step"] == 300
    assert [v["image"] for v in metrics["val"]["per_view"]] == ["view_000.png", "view_008.png", "view_016.png"]
    per_view = metrics["val"]["per_view"]
    assert metrics["val"]["psnr"] == pytest.approx(sum(v["psnr"] for v in per_view) / 3)
    assert metrics["val"]["psnr"] == pytest.approx(result.evaluation.psnr)
    assert 0.0 < metrics["val"]["ssim"] <= 1.0


def test_tensorboard_has_the_documented_tags(short_run):
    config, _ = short_run
    events = EventAccumulator(str(config.summary_writer_log_dir), size_guidance={"images": 0, "histograms": 0})
    events.Reload()
    tags = events.Tags()
    for tag in ("train/loss", "train/l1_loss", "train/ssim_loss", "train/psnr", "train/step_time_ms", "val/psnr",
                "val/ssim", "value/num_valid_points", "lr/quats"):
        assert tag in tags["scalars"], tag
    assert not [tag for tag in tags["scalars"] if " " in tag]
    means_lr = [e.value for e in events.Scalars("lr/means")]  # decays exponentially, as means_learning_rate
    assert means_lr[-1] == pytest.approx(means_learning_rate(300, config.learning_rates, scene_extent(
        read_cameras_json(config.train_dataset_json_path)), 300, 1), rel=1e-5) and means_lr[-1] < means_lr[0]
    assert [e.step for e in events.Histograms("params/means")] == [150, 300]  # at each evaluation
    assert "val/images/view_000.png" in tags["images"]


@pytest.mark.parametrize("strategy", ["default", "mcmc"])
def test_resume_after_ctrl_c_reproduces_an_uninterrupted_run(demo_scene, tmp_path, monkeypatch, strategy):
    settings = {
        "num-iterations": 40, "val-interval": 20, "checkpoint-interval": 1000, "strategy": strategy,
        "random-background": True,
        "adaptive-controller-config": {"num-iterations-warm-up": 5, "num-iterations-densify": 10},
        "mcmc-config": {"refine-start-iteration": 5, "refine-every": 10},
    }
    uninterrupted = train(demo_config(demo_scene, tmp_path / "a", **settings))

    calls = {"n": 0}
    real_render = trainer_module.render_model_view

    def render_then_press_ctrl_c_at_step_17(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 17:
            signal.raise_signal(signal.SIGINT)
        return real_render(*args, **kwargs)

    config_b = demo_config(demo_scene, tmp_path / "b", **settings)
    monkeypatch.setattr(trainer_module, "render_model_view", render_then_press_ctrl_c_at_step_17)
    stopped = train(config_b)
    monkeypatch.undo()
    assert stopped.interrupted and stopped.step == 17
    resumed = train(config_b, resume=True)
    assert not resumed.interrupted and resumed.step == 40

    a = read_scene_parquet(tmp_path / "a" / "final_scene.parquet")
    b = read_scene_parquet(tmp_path / "b" / "final_scene.parquet")
    assert a.num_gaussians == b.num_gaussians
    for name in ("means", "quats", "log_scales", "opacity_logits", "sh_coeffs"):
        assert torch.allclose(getattr(a, name), getattr(b, name), rtol=0, atol=1e-6), name
    assert resumed.evaluation.psnr == pytest.approx(uninterrupted.evaluation.psnr, abs=1e-6)


def test_validation_reports_lpips_with_a_weights_file(demo_scene, tmp_path, capsys):
    """Val LPIPS in metrics.json (mean and per view, equal to the layer-by-layer reference on the
    final scene's val renders), TensorBoard and the printed lines; a missing file, or val images
    too small for LPIPS, stop the run before it writes, naming the key."""
    weights = write_random_lpips_weights(tmp_path / "alex.pt")
    missing = dict(logging={"progress-bar": False, "lpips-weights": str(tmp_path / "none.pt")})
    with pytest.raises(ConfigError, match=rf"<config>: key 'logging.lpips-weights': {tmp_path / 'none.pt'}: "
                                          "LPIPS weights file not found"):
        train(demo_config(demo_scene, tmp_path / "out", **missing))
    logging = {"progress-bar": False, "lpips-weights": str(weights)}
    with pytest.raises(ConfigError, match=r"<config>: key 'logging.lpips-weights': val image view_000.png: LPIPS "
                                          r"needs images of at least 31x31 px \(AlexNet's relu5\), got 16x16 px"):
        train(demo_config(demo_scene, tmp_path / "out", logging=logging, **{"image-downscale-factor": 8}))
    assert not (tmp_path / "out").exists()

    out = tmp_path / "out"
    train(demo_config(demo_scene, out, logging=logging, **{"num-iterations": 2, "val-interval": 2}))
    val = json.loads((out / "metrics.json").read_text())["val"]
    model = load_initial_model(out / "final_scene.parquet")
    views = load_views(read_cameras_json(demo_scene / "val.json"), 1, 1600, "cpu")
    expected = [reference_lpips(random_lpips_weights(), render_model_view(model, view, RasterizerConfig(), torch.zeros(3))
                                .image.clamp(0.0, 1.0), view.target(torch.zeros(3))) for view in views]
    assert [v["lpips"] for v in val["per_view"]] == pytest.approx(expected, rel=1e-4)
    assert val["lpips"] == pytest.approx(sum(expected) / len(expected), rel=1e-4)
    events = EventAccumulator(str(out / "logs"))
    events.Reload()
    assert [e.value for e in events.Scalars("val/lpips")] == pytest.approx([val["lpips"]])
    printed = capsys.readouterr().out
    assert f"step 2: val PSNR {val['psnr']:.2f} dB, SSIM {val['ssim']:.4f}, LPIPS {val['lpips']:.4f}, " in printed



def test_a_fresh_run_in_a_folder_with_a_checkpoint_says_it_replaces_it(demo_scene, tmp_path, capsys):
    out = tmp_path / "out"
    train(demo_config(demo_scene, out, **{"num-iterations": 2, "val-interval": 2}))
    assert "earlier run" not in capsys.readouterr().out  # nothing there before the first run
    train(demo_config(demo_scene, out, **{"num-iterations": 3, "val-interval": 3}))
    assert (f"{out} holds checkpoint_0000002.pt of an earlier run: this run starts afresh and replaces it at its "
            "first checkpoint" in capsys.readouterr().out)
    assert sorted(p.name for p in (out / "checkpoints").glob("*.pt")) == ["checkpoint_0000003.pt"]


def test_the_saved_scenes_record_the_training_resolution_which_the_renderer_evaluates_at(demo_scene, tmp_path):
    """Issue 25: a scene trained at image-downscale-factor 2 is evaluated by gaussian_point_render.py
    at 64 x 64 px without --image_downscale_factor, scoring what the trainer scored."""
    out = tmp_path / "out"
    train(demo_config(demo_scene, out, **{"num-iterations": 2, "val-interval": 1, "image-downscale-factor": 2,
                                          "max-image-long-side": 100}))
    for name in ("scene_1.parquet", "final_scene.parquet"):
        assert read_training_resolution(out / name) == TrainingResolution(2, 100), name
    rendered = subprocess.run([sys.executable, str(REPO_ROOT / "gaussian_point_render.py"), "--scene",
                               str(out / "final_scene.parquet"), "--cameras", str(demo_scene / "val.json"),
                               "--output_dir", str(tmp_path / "render")], capture_output=True, text=True, timeout=300)
    assert rendered.returncode == 0, rendered.stderr
    assert Image.open(tmp_path / "render" / "gt" / "00000.png").size == (64, 64)
    trained = json.loads((out / "metrics.json").read_text())["val"]["psnr"]
    assert json.loads((tmp_path / "render" / "metrics.json").read_text())["val"]["psnr"] == pytest.approx(
        trained, abs=0.05)


@pytest.mark.parametrize("val_psnrs, best", [((30.0, 20.0), "scene_1.parquet"), ((20.0, 30.0), None)])
def test_each_scene_is_written_once_and_best_scene_only_when_it_is_not_the_final_one(
        demo_scene, tmp_path, monkeypatch, capsys, val_psnrs, best):
    """Issue 25: with the val PSNR of steps 1 and 2 set, best_scene.parquet is step 1's scene when
    that scored better, absent when the final scene did; there is no scene_2.parquet."""
    scores = iter(val_psnrs)
    real_evaluate = trainer_module.evaluate_across_ranks

    def evaluate_with_set_psnr(*args, **kwargs):
        result = real_evaluate(*args, **kwargs)
        result.psnr = next(scores)
        return result

    monkeypatch.setattr(trainer_module, "evaluate_across_ranks", evaluate_with_set_psnr)
    out = tmp_path / "out"
    train(demo_config(demo_scene, out, **{"num-iterations": 2, "val-interval": 1, "image-downscale-factor": 4}))
    assert sorted(p.name for p in out.glob("*.parquet")) == sorted(
        ["scene_1.parquet", "final_scene.parquet"] + (["best_scene.parquet"] if best else []))
    printed = capsys.readouterr().out
    if best:
        assert (out / "best_scene.parquet").read_bytes() == (out / best).read_bytes()
        assert "the best val PSNR (30.00 dB) is step 1's, best_scene.parquet" in printed
    else:
        assert "the final scene, final_scene.parquet, has the best val PSNR" in printed
