"""Batched training (`batch-size`) on a small real capture: COLMAP table (text model, distorted
cameras undistorted by the converter) at 1/8 resolution, 96 x 128 px, 12 train + 2 val views,
3,036 initial points; a few dozen steps with densification in range.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from conftest import dataset_path
from test_trainer import demo_config
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from taichi_3dgs.data.cameras import read_cameras_json, write_cameras_json
from taichi_3dgs.data.colmap import convert_colmap
from taichi_3dgs.data.views import load_views
from taichi_3dgs.metrics import ssim
from taichi_3dgs.rasterizer import RasterizerConfig
from taichi_3dgs.scene.model import GaussianModel, load_initial_model
from taichi_3dgs.training.batch_scaling import MAX_BATCH_SIZE, schedule_in_batches
from taichi_3dgs.training.checkpoint import latest_checkpoint, load_checkpoint
from taichi_3dgs.training.config import (
    STEP_COUNT_KEYS, ConfigError, DensificationConfig, LearningRateConfig, TrainConfig, config_to_yaml,
    parse_train_config,
)
from taichi_3dgs.training.dataset import ViewSampler, scene_extent
from taichi_3dgs.training.evaluation import render_model_view
from taichi_3dgs.training.strategies import make_strategy
from taichi_3dgs.training.strategies.default import DefaultStrategy
from taichi_3dgs.training.losses import l1_loss
from taichi_3dgs.training.optimization import make_optimizer, means_learning_rate, param_group, set_learning_rate
from taichi_3dgs.training.trainer import train

# The settings of the reference runs below; step counts are in images (single-camera steps).
SHORT_RUN = {
    "image-downscale-factor": 8, "num-iterations": 40, "val-interval": 20, "checkpoint-interval": 20,
    "random-background": True, "increase-color-max-sh-band-interval": 10,
    "logging": {"progress-bar": False, "log-loss-interval": 5},
    # Densify at 20 and 30 (30 also prunes large Gaussians, after the opacity reset at 20).
    "adaptive-controller-config": {"num-iterations-warm-up": 10, "num-iterations-densify": 10,
                                   "densify-until-iteration": 35, "num-iterations-reset-alpha": 20},
    "mcmc-config": {"refine-start-iteration": 10, "refine-every": 10, "refine-stop-iteration": 35,
                    "cap-max": 4000},
}

@pytest.fixture(scope="session")
def table_scene(tmp_path_factory) -> Path:
    """The COLMAP table capture prepared by the converter (cameras, undistorted images, points)."""
    folder = tmp_path_factory.mktemp("table") / "table"
    convert_colmap(dataset_path("colmap_table_txt"), folder, image_downscale_factor=8)
    return folder


def table_config(scene: Path, out: Path, **keys) -> TrainConfig:
    """SHORT_RUN on the prepared table scene writing into `out`, top-level YAML keys overridden."""
    return demo_config(scene, out, **{**SHORT_RUN, **keys})


def single_camera_reference(config: TrainConfig) -> GaussianModel:
    """The single-camera training loop written out (the official train.py's order, one view per
    step, no batching), from the same parts the trainer uses: the parameters the trainer must
    reproduce at batch-size 1. Validation and checkpoints change no parameter and are left out.
    Covers what SHORT_RUN uses: random background, SH degree increase, the means' decay, the
    configured strategy; no pose, exposure or depth options."""
    records = read_cameras_json(config.train_dataset_json_path)
    views = load_views(records, config.image_downscale_factor, config.max_image_long_side, "cpu")
    extent = scene_extent(records)
    scene_cfg, loss_cfg, rates = config.gaussian_point_cloud_scene_config, config.loss_function_config, config.learning_rates
    model = load_initial_model(config.pointcloud_parquet_path, scene_cfg.initial_opacity, scene_cfg.num_neighbours,
                               config.seed)
    model.antialiased = config.rasterisation_config.antialiased
    initial_sh_degree = model.active_sh_degree
    raster_cfg = dataclasses.replace(config.rasterisation_config, color_activation=model.color_activation)
    optimizer = make_optimizer(model, rates, extent)
    strategy = make_strategy(config, extent)
    generator = torch.Generator().manual_seed(config.seed)
    sampler = ViewSampler(len(views))
    steps = config.num_iterations
    for step in range(1, steps + 1):
        model.active_sh_degree = max(initial_sh_degree,
                                     min(scene_cfg.max_sh_degree, step // config.increase_color_max_sh_band_interval))
        means_lr = means_learning_rate(step, rates, extent, steps)
        set_learning_rate(optimizer, "means", means_lr)
        view = views[sampler.next(generator)]
        background = torch.rand(3, generator=generator)
        out = render_model_view(model, view, raster_cfg, background, absgrad=strategy.absgrad)
        target = view.target(background)
        loss = ((1.0 - loss_cfg.lambda_value) * l1_loss(out.image, target, view.mask)
                + loss_cfg.lambda_value * (1.0 - ssim(out.image, target, view.mask, loss_cfg.ssim_window_size,
                                                      loss_cfg.ssim_sigma)))
        loss = loss + strategy.regularization_loss(model)
        loss.backward()
        strategy.step_post_backward(step, [(out, view.width, view.height)])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if step < steps:
            strategy.step_post_optimizer(step, model, optimizer, means_lr, generator)
    return model


# batch-size 1 written out, and left unset (its default).
@pytest.mark.parametrize("strategy, steps, batch", [("default", 40, {"batch-size": 1}), ("mcmc", 30, {})])
def test_batch_size_1_reproduces_the_single_camera_trainer_bit_for_bit(table_scene, tmp_path, strategy, steps, batch):
    """The trainer at batch-size 1 against the single-camera loop computed in the same run on the
    same CPU (the kernels' rounding differs between CPU families, so no stored bits)."""
    config = table_config(table_scene, tmp_path / "out", strategy=strategy, **{"num-iterations": steps}, **batch)
    result = train(config)
    reference = single_camera_reference(config)
    trained = load_checkpoint(latest_checkpoint(tmp_path / "out"), "cpu")["model"]
    assert result.num_gaussians == reference.num_gaussians
    assert reference.num_gaussians != load_initial_model(config.pointcloud_parquet_path, 0.1, 3, 0).num_gaussians
    for name, parameter in reference.parameter_dict().items():
        assert torch.equal(trained[name], parameter.detach()), name


def test_a_step_of_a_batch_trains_on_the_mean_loss_of_distinct_views(table_scene, tmp_path):
    """3 images at batch-size 2: 2 optimisation steps (rounded up), the first step's logged loss the
    mean of the losses of the first two views the seed draws, rendered from the initial model."""
    out = tmp_path / "out"
    config = table_config(table_scene, out, **{"batch-size": 2, "num-iterations": 3, "random-background": False,
                                               "logging": {"progress-bar": False, "log-loss-interval": 1}})
    result = train(config)
    assert result.step == 2
    assert latest_checkpoint(out).name == "checkpoint_0000002.pt"

    indices = ViewSampler(12).next_batch(torch.Generator().manual_seed(config.seed), 2)
    assert len(set(indices)) == 2
    views = load_views(read_cameras_json(config.train_dataset_json_path), 8, 1600, "cpu")
    model = load_initial_model(config.pointcloud_parquet_path, 0.1, 3, config.seed)
    losses = []
    with torch.no_grad():
        for index in indices:
            image = render_model_view(model, views[index], RasterizerConfig(), torch.zeros(3)).image
            target = views[index].target(torch.zeros(3))
            losses.append(0.8 * float(l1_loss(image, target)) + 0.2 * (1.0 - float(ssim(image, target))))
    events = EventAccumulator(str(out / "logs"))
    events.Reload()
    logged = {e.step: e.value for e in events.Scalars("train/loss")}
    assert sorted(logged) == [1, 2]
    assert logged[1] == pytest.approx(sum(losses) / 2, rel=1e-6)
    assert abs(losses[0] - losses[1]) > 1e-3  # two different views: a mean, not one of them


def test_batch_must_fit_the_training_cameras(table_scene, tmp_path):
    records = read_cameras_json(table_scene / "train.json")[:3]
    write_cameras_json(tmp_path / "three.json", records)
    config = table_config(table_scene, tmp_path / "out", **{"batch-size": 4,
                                                            "train-dataset-json-path": str(tmp_path / "three.json")})
    with pytest.raises(ConfigError, match=r"'batch-size' is 4 .*holds 3 camera\(s\)"):
        train(config)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("batch_size", [0, MAX_BATCH_SIZE + 1, 16])
def test_config_refuses_a_batch_size_whose_adam_beta1_is_not_positive(batch_size):
    with pytest.raises(ConfigError, match=r"'batch-size' must be 1\.\.9.*1 - B \(1 - 0\.9\)"):
        parse_train_config({"batch-size": batch_size}, "run.yaml")


def test_largest_batch_keeps_both_betas_positive():
    assert MAX_BATCH_SIZE == 9  # beta1 = 1 - B x 0.1 is 0 at B = 10
    assert parse_train_config({"batch-size": 9}, "run.yaml").batch_size == 9


def test_adam_follows_gsplat_batch_scaling():
    """gsplat simple_trainer: lr x sqrt(B), eps / sqrt(B), betas 1 - B (1 - beta)."""
    n, extent, batch = 3, 4.0, 4
    model = GaussianModel(torch.zeros(n, 3), torch.zeros(n, 4), torch.zeros(n, 3), torch.zeros(n), torch.zeros(n, 16, 3))
    rates = LearningRateConfig()
    optimizer = make_optimizer(model, rates, extent, batch_size=batch)
    official = {"means": 1.6e-4 * extent, "sh_dc": 2.5e-3, "sh_rest": 2.5e-3 / 20, "opacity_logits": 5e-2,
                "log_scales": 5e-3, "quats": 1e-3}
    for name, lr in official.items():
        group = param_group(optimizer, name)
        assert group["lr"] == pytest.approx(lr * 2.0), name
        assert group["eps"] == pytest.approx(1e-15 / 2.0)
        assert group["betas"] == pytest.approx((0.6, 0.996))
    assert means_learning_rate(0, rates, extent, 100, batch_size=batch) == pytest.approx(1.6e-4 * extent * 2.0)
    assert means_learning_rate(100, rates, extent, 100, batch_size=batch) == pytest.approx(1.6e-6 * extent * 2.0)


def test_batch_size_1_keeps_torch_adam_defaults_exactly():
    model = GaussianModel(torch.zeros(1, 3), torch.zeros(1, 4), torch.zeros(1, 3), torch.zeros(1), torch.zeros(1, 16, 3))
    group = param_group(make_optimizer(model, LearningRateConfig(), 1.0), "quats")
    assert group["betas"] == (0.9, 0.999) and group["eps"] == 1e-15 and group["lr"] == 1e-3


def test_schedule_counts_optimisation_steps_of_the_batch():
    config = parse_train_config({"batch-size": 3, "num-iterations": 30_000, "val-interval": 1000,
                                 "learning-rates": {"means-max-steps": 20},
                                 "adaptive-controller-config": {"num-iterations-warm-up": 500,
                                                                "num-iterations-densify": 100},
                                 "mcmc-config": {"refine-start-iteration": 0}}, "run.yaml")
    schedule = schedule_in_batches(config)
    assert schedule.num_iterations == 10_000 and schedule.val_interval == 334  # ceil(1000 / 3)
    assert schedule.learning_rates.means_max_steps == 7
    assert schedule.adaptive_controller_config.num_iterations_warm_up == 167
    assert schedule.adaptive_controller_config.num_iterations_densify == 34
    assert schedule.adaptive_controller_config.densify_until_iteration == 5000
    assert schedule.mcmc_config.refine_start_iteration == 0
    assert schedule.logging.log_loss_interval == 4  # ceil(10 / 3)
    assert schedule_in_batches(dataclasses.replace(config, batch_size=1)) == dataclasses.replace(config, batch_size=1)
    assert schedule_in_batches(parse_train_config({"batch-size": 3}, "run.yaml")).learning_rates.means_max_steps is None


def test_every_step_count_of_the_config_is_scaled_with_the_batch():
    """Each integer key that counts steps (named ...iteration..., ...interval, ...every, ...steps) is
    in STEP_COUNT_KEYS, so a new one cannot be forgotten."""
    def integer_keys(cls, prefix=""):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            key, tp = prefix + f.name.replace("_", "-"), hints[f.name]
            if dataclasses.is_dataclass(tp):
                yield from integer_keys(tp, key + ".")
            elif tp in (int, typing.Optional[int]):
                yield key
    counting = {key for key in integer_keys(TrainConfig)
                if any(word in key.rsplit(".", 1)[-1] for word in ("iteration", "interval", "every", "steps"))}
    assert counting == set(STEP_COUNT_KEYS)
    yaml_keys = yaml.safe_load(config_to_yaml(TrainConfig(), comments=False))
    for key in STEP_COUNT_KEYS:  # every listed key exists
        node = yaml_keys
        for part in key.split("."):
            node = node[part]


def test_sampler_batches_hold_distinct_views_and_every_view_once_per_pass():
    sampler = ViewSampler(7)
    generator = torch.Generator().manual_seed(3)
    drawn = [sampler.next_batch(generator, 3) for _ in range(7)]  # 21 views = 3 passes
    assert all(len(set(batch)) == 3 for batch in drawn)
    flat = [index for batch in drawn for index in batch]
    assert sorted(flat) == sorted(list(range(7)) * 3)
    with pytest.raises(ValueError, match="cannot draw 8 distinct views out of 7"):
        sampler.next_batch(generator, 8)


def test_sampler_batch_of_one_is_the_single_view_draw():
    single, batched = ViewSampler(9), ViewSampler(9)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    assert [single.next(g1) for _ in range(20)] == [batched.next_batch(g2, 1)[0] for _ in range(20)]


def test_sampler_draws_the_whole_stack_when_the_batch_is_every_view():
    sampler = ViewSampler(4)
    generator = torch.Generator().manual_seed(0)
    sampler.next_batch(generator, 3)  # one view left in the pass
    for _ in range(5):
        assert sorted(sampler.next_batch(generator, 4)) == [0, 1, 2, 3]


def test_densification_gradient_of_a_batch_is_each_views_own_gradient():
    """Two views of a batch of 2, each with half its own view-space gradient (the loss is the
    mean): the statistic is that of the views alone (gsplat: grad x n_cameras)."""
    n, width, height = 3, 100, 80
    own = torch.tensor([3e-4, 1e-4, 0.0])  # NDC units

    def render(grad_ndc):
        means2d = torch.zeros(n, 2)
        means2d.grad = torch.stack([grad_ndc / (width / 2.0), torch.zeros(n)], dim=1)
        return SimpleNamespace(radii=torch.tensor([4, 4, 0], dtype=torch.int32), means2d=means2d), width, height

    strategy = DefaultStrategy(DensificationConfig(), 1.0)
    strategy.step_post_backward(1, [render(own / 2), render(own / 2)], batch_size=2)
    assert torch.allclose(strategy.grad_norm_sum / strategy.visible_count.clamp(min=1), own)
    assert torch.equal(strategy.visible_count, torch.tensor([2.0, 2.0, 0.0]))
