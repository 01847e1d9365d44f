"""Preparing a training run: everything read and checked before the run touches its output folder.

`prepare_run` reads the config's paths, cameras, images, point cloud (or, with `--resume`, the
checkpoint, checked to belong to this config), LPIPS weights, and builds the model, the optimizer,
the densification strategy and the camera optimisation in the state the first step starts from.
Nothing is created or changed on disk: a run that fails on its input leaves the output and log
folders as they were (the trainer locks the folder and writes only afterwards).

The run's config is the batch-scaled one (`batch_scaling.schedule_in_batches`: step counts in
optimisation steps of `batch-size` views), the only one the loop reads; the user's config survives
as `config_yaml`, the text written to train_config.yaml and into checkpoints.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

import torch

from taichi_3dgs.backend import torch_device
from taichi_3dgs.data.background_points import background_points
from taichi_3dgs.data.cameras import CameraRecord, read_cameras_json
from taichi_3dgs.data.point_cloud import PointCloud
from taichi_3dgs.data.views import View, load_view, load_views
from taichi_3dgs.lpips import LPIPS, check_image_size, load_lpips
from taichi_3dgs.rasterizer import RasterizerConfig
from taichi_3dgs.scene.model import GaussianModel, load_initial_model
from taichi_3dgs.training.batch_scaling import learning_rate_factor, schedule_in_batches
from taichi_3dgs.training.camera_optimization import CameraOptimization
from taichi_3dgs.training.checkpoint import (
    camera_fingerprint, check_resumable, checkpoint_dir, latest_checkpoint, load_checkpoint, model_from_checkpoint,
    restoring,
)
from taichi_3dgs.training.config import ConfigError, TrainConfig, config_to_yaml, require_paths
from taichi_3dgs.training.dataset import ViewSampler, scene_centre, scene_extent
from taichi_3dgs.training.depth_supervision import check_depth_supervision
from taichi_3dgs.training.distributed import World
from taichi_3dgs.training.optimization import make_optimizer
from taichi_3dgs.training.run_length import schedule_for_run_length
from taichi_3dgs.training.run_folder import check_output_folder, check_outputs_are_not_inputs
from taichi_3dgs.training.strategies import Strategy, make_strategy


@dataclass
class PreparedRun:
    """A run ready for its first step (`prepare_run`).

    Attributes:
        config: the batch-scaled config (the one the loop reads).
        config_yaml: the user's config as YAML (train_config.yaml, checkpoints).
        source: the config's name, for messages.
        out_dir: `output-model-dir`.
        device: the training device.
        background: [3] float32 RGB on `device`.
        lpips: the LPIPS metric, or None.
        train_records, val_records: the cameras; cameras: their fingerprints {"train", "val"}.
        train_views: every training view; val_views: this process's share of the val views.
        extent: the scene extent, world units.
        model, optimizer, strategy, cameras_opt, sampler, generator: the training state.
        initial_sh_degree: the SH degree the run started at.
        start_step: the last completed step (0 for a new run).
        best: {"psnr", "step"} of the best evaluation so far.
        raster_cfg: the rasterizer config with the model's colour activation.
    """

    config: TrainConfig
    config_yaml: str
    source: str
    out_dir: Path
    device: torch.device
    background: torch.Tensor
    lpips: Optional[LPIPS]
    train_records: list[CameraRecord]
    val_records: list[CameraRecord]
    cameras: dict[str, dict]
    train_views: list[View]
    val_views: list[View]
    extent: float
    model: GaussianModel
    optimizer: torch.optim.Optimizer
    strategy: Strategy
    cameras_opt: CameraOptimization
    sampler: ViewSampler
    generator: torch.Generator
    initial_sh_degree: int
    start_step: int
    best: dict[str, Any]
    raster_cfg: RasterizerConfig

    def checkpoint_payload(self) -> dict[str, Any]:
        """Everything `checkpoint.save_checkpoint` stores of the run's current state."""
        model = self.model
        return {
            "model": {name: p.detach() for name, p in model.parameter_dict().items()},
            "color_activation": model.color_activation,
            "active_sh_degree": model.active_sh_degree,
            "initial_sh_degree": self.initial_sh_degree,
            "optimizer": self.optimizer.state_dict(),
            "strategy": self.strategy.state_dict(),
            "sampler": self.sampler.state_dict(),
            "generator": self.generator.get_state(),
            "best": dict(self.best),
            "config_yaml": self.config_yaml,
            "cameras": self.cameras,
            **self.cameras_opt.checkpoint_entries(),
        }


def _read_cameras(config: TrainConfig, source: str) -> tuple[list[CameraRecord], list[CameraRecord]]:
    """The train and val camera records; raise ConfigError when there is no train camera."""
    train_records = read_cameras_json(config.train_dataset_json_path)
    if not train_records:
        raise ConfigError(f"{source}: key 'train-dataset-json-path' is {config.train_dataset_json_path}, which "
                          "holds no camera record; expected at least one")
    val_records = read_cameras_json(config.val_dataset_json_path) if config.val_dataset_json_path else []
    return train_records, val_records


def _load_lpips(config: TrainConfig, source: str, device: torch.device) -> Optional[LPIPS]:
    """The LPIPS metric of `logging.lpips-weights` on `device`, or None when the key is null.

    Raises:
        ConfigError: the file is missing or not valid LPIPS weights (names the key and the file).
    """
    path = config.logging.lpips_weights
    if path is None:
        return None
    try:
        return load_lpips(path, device)
    except (FileNotFoundError, ValueError) as error:
        raise ConfigError(f"{source}: key 'logging.lpips-weights': {error}") from None


def _check_batch(batch_size: int, world: World, num_train_views: int, config: TrainConfig, source: str) -> None:
    """Refuse a batch the processes cannot share evenly, or larger than the training cameras."""
    if batch_size % world.size:
        raise ConfigError(f"{source}: key 'batch-size' is {batch_size}, the global batch, which {world.size} "
                          f"processes cannot share evenly; use a multiple of {world.size}")
    if batch_size > num_train_views:
        raise ConfigError(f"{source}: key 'batch-size' is {batch_size} but key 'train-dataset-json-path' "
                          f"({config.train_dataset_json_path}) holds {num_train_views} camera(s); a batch takes "
                          f"distinct cameras, so at most {num_train_views}")


def _check_depth_maps(config: TrainConfig, train_records: list[CameraRecord], source: str) -> None:
    """Refuse `depth-loss: true` when no training camera names a depth map: it would train nothing."""
    if config.depth_loss and all(record.depth_path is None for record in train_records):
        raise ConfigError(f"{source}: key 'depth-loss' is true but no record of key 'train-dataset-json-path' "
                          f"({config.train_dataset_json_path}) names a depth map; expected depth_path in the "
                          "records to supervise (docs/FORMATS.md), or depth-loss: false")


def _initial_points(config: TrainConfig, train_views: list[View], train_records: list[CameraRecord], extent: float,
                    background: torch.Tensor) -> Optional[Callable[[PointCloud], PointCloud]]:
    """The `extra_points` of `load_initial_model` for the config's `initial-points` (None when all
    counts are 0): the view-volume, far-shell, beyond-cloud and camera-shell points of
    `data.background_points`."""
    points = config.initial_points
    if not (points.random_in_view_volume or points.far_shell or points.beyond_cloud or points.camera_shell):
        return None
    return functools.partial(
        background_points, views=train_views, num_view_volume=points.random_in_view_volume,
        depth_quantiles=points.view_volume_depth_quantiles, num_far_shell=points.far_shell,
        shell_centre=scene_centre(train_records), shell_radius=points.far_shell_radius * extent,
        background=background, seed=config.seed, num_beyond_cloud=points.beyond_cloud,
        beyond_cloud_depth_quantiles=points.beyond_cloud_depth_quantiles,
        beyond_cloud_far_factor=points.beyond_cloud_far_factor, num_camera_shell=points.camera_shell,
        camera_shell_radius=points.camera_shell_radius,
    )


def _read_views(config: TrainConfig, source: str, world: World, device: torch.device, lpips: Optional[LPIPS],
                say: Callable[[str], None]) -> dict[str, Any]:
    """The cameras and images of the run, checked: {train_records, val_records, cameras, train_views,
    val_views, extent}."""
    train_records, val_records = _read_cameras(config, source)
    _check_batch(config.batch_size, world, len(train_records), config, source)
    _check_depth_maps(config, train_records, source)
    # Training depth maps are loaded only for the depth loss (they take more memory than the images).
    train_views = load_views(train_records, config.image_downscale_factor, config.max_image_long_side, device,
                             str(config.train_dataset_json_path), with_depth=config.depth_loss)
    if config.depth_loss:
        check_depth_supervision(config, train_views, source)
    # Each process decodes only the val images it renders (`evaluation.evaluate_across_ranks`).
    val_views = [load_view(record, config.image_downscale_factor, config.max_image_long_side, device,
                           f"{config.val_dataset_json_path}: record {index}", with_depth=True)
                 for index, record in world.share(list(enumerate(val_records)))]
    for view in val_views if lpips is not None else []:  # refused now, not at the first evaluation
        try:
            check_image_size(view.width, view.height, f"val image {view.name}")
        except ValueError as error:
            raise ConfigError(f"{source}: key 'logging.lpips-weights': {error}") from None
    extent = scene_extent(train_records)
    first = train_views[0]
    say(f"{len(train_views)} train / {len(val_records)} val views at {first.width}x{first.height} px "
        f"(first view), scene extent {extent:.3f}")
    return {"train_records": train_records, "val_records": val_records, "train_views": train_views,
            "val_views": val_views, "extent": extent,
            "cameras": {"train": camera_fingerprint(train_records), "val": camera_fingerprint(val_records)}}


def prepare_run(user_config: TrainConfig, resume: bool, source: str, world: World,
                say: Callable[[str], None]) -> PreparedRun:
    """Read and check everything a run needs, and build its starting state; write nothing.

    Args:
        user_config: the config as the user wrote it (step counts in images).
        resume: start from the newest checkpoint in `<output-model-dir>/checkpoints`.
        source: the config's name, for messages.
        world: the processes training together.
        say: prints a line (in the main process).

    Raises:
        As `trainer.train` before its lock: ConfigError, FileNotFoundError, ValueError.
    """
    require_paths(user_config, source)
    out_dir = Path(user_config.output_model_dir)
    check_output_folder(out_dir, "output-model-dir", source)
    check_output_folder(user_config.summary_writer_log_dir, "summary-writer-log-dir", source)
    check_outputs_are_not_inputs(out_dir, ["train_config.yaml", "train.json", "val.json"], {
        "train-dataset-json-path": user_config.train_dataset_json_path,
        "val-dataset-json-path": user_config.val_dataset_json_path, "the config file": source}, source)
    device = torch_device()
    background = torch.tensor(user_config.background_color, dtype=torch.float32, device=device)
    lpips = _load_lpips(user_config, source, device)
    inputs = _read_views(user_config, source, world, device, lpips, say)
    # The loop counts optimisation steps of batch-size views; the user's config counts images.
    config = schedule_in_batches(schedule_for_run_length(user_config))
    batch_size = config.batch_size
    if batch_size > 1 or world.size > 1:
        shared = f" ({batch_size // world.size} in each of {world.size} processes)" if world.size > 1 else ""
        say(f"batches of {batch_size} views{shared}: {config.num_iterations} steps, learning rates x "
            f"{learning_rate_factor(batch_size):.3g}")

    checkpoint, path = None, None
    if resume:
        path = latest_checkpoint(out_dir)
        if path is None:
            raise FileNotFoundError(f"--resume: no checkpoint in {checkpoint_dir(out_dir)}")
        checkpoint = load_checkpoint(path, device)
        check_resumable(checkpoint, path, user_config, inputs["cameras"], source)
        model = model_from_checkpoint(checkpoint, path, device)
    else:
        scene_cfg = config.gaussian_point_cloud_scene_config
        model = load_initial_model(
            config.pointcloud_parquet_path, scene_cfg.initial_opacity, scene_cfg.num_neighbours, config.seed, device,
            _initial_points(config, inputs["train_views"], inputs["train_records"], inputs["extent"], background),
        )
        earlier = latest_checkpoint(out_dir)
        if earlier is not None:
            say(f"{out_dir} holds {earlier.name} of an earlier run: this run starts afresh and replaces it at its "
                "first checkpoint (to continue the earlier run instead, stop now and run again with --resume)")
    # The config's filter, also for a warm start from a scene that recorded another one: the saved
    # scenes record the filter they were trained with, for every renderer to apply.
    model.antialiased = config.rasterisation_config.antialiased
    run = PreparedRun(
        config=config, config_yaml=config_to_yaml(user_config), source=source, out_dir=out_dir, device=device,
        background=background, lpips=lpips, **inputs, model=model,
        optimizer=make_optimizer(model, config.learning_rates, inputs["extent"], batch_size, config.optimizer),
        strategy=make_strategy(config, inputs["extent"]),
        # Pose optimisation and exposure compensation: with both off, each cameras_opt hook is a no-op.
        cameras_opt=CameraOptimization(config, inputs["train_records"], inputs["train_views"], device, source),
        sampler=ViewSampler(len(inputs["train_views"])), generator=torch.Generator().manual_seed(config.seed),
        initial_sh_degree=model.active_sh_degree if checkpoint is None else checkpoint["initial_sh_degree"],
        start_step=0 if checkpoint is None else checkpoint["step"], best={"psnr": -math.inf, "step": 0},
        raster_cfg=dataclasses.replace(config.rasterisation_config, color_activation=model.color_activation),
    )
    if checkpoint is not None:
        _restore(run, checkpoint, path)
        say(f"resuming from {path} (step {run.start_step})")
    return run


def _restore(run: PreparedRun, checkpoint: dict[str, Any], path: Path) -> None:
    """Put the optimizer, strategy, sampler, generator, camera optimisation and best score of
    `checkpoint` into `run` (errors name the file and the key)."""
    run.cameras_opt.load_checkpoint(checkpoint, path)
    with restoring(path, "optimizer"):
        run.optimizer.load_state_dict(checkpoint["optimizer"])
    with restoring(path, "strategy"):
        run.strategy.load_state_dict(checkpoint["strategy"], run.device)
    with restoring(path, "sampler"):
        run.sampler.load_state_dict(checkpoint["sampler"])
    with restoring(path, "generator"):
        run.generator.set_state(checkpoint["generator"])
    run.best = dict(checkpoint["best"])
