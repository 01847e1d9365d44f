"""The training configuration read from YAML: `TrainConfig`, its checks and its files.

The YAML keeps the original Taichi 3DGS project's style: kebab-case keys (snake_case accepted),
its top-level key names (`train-dataset-json-path`, `num-iterations`, `val-interval`, ...) and its
nested sections (`rasterisation-config`, `adaptive-controller-config`, `loss-function-config`,
`gaussian-point-cloud-scene-config`; their dataclasses in `config_sections`). Defaults follow the
official 3DGS code (graphdeco-inria `arguments/__init__.py`, `train.py`) unless a field's help says
otherwise. Reading, checking key names and types, overrides and writing are `config_loader`'s;
this module holds the schema and the checks of ranges that types alone do not express.

What other modules need to know about keys is marked on the fields (`config_loader.setting`) and
read back as tables here: `STEP_COUNT_KEYS` (`steps=True`: counts of single-camera steps, which
`batch_scaling` divides by the batch), `SCHEDULE_KEYS` (`schedule=True`: the step counts that
`scale-schedule` scales with num-iterations, `run_length`), `RESUMABLE_KEYS` (`resume="may-change"`), `CAMERA_KEYS`
(`cameras=split`: compared by content on resume) and `strategy_sections()` (`strategy=name`).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

import yaml

from taichi_3dgs.atomic_io import write_text_atomic
from taichi_3dgs.color_model import MAX_SH_DEGREE
from taichi_3dgs.rasterizer import RasterizerConfig
from taichi_3dgs.training.batch_scaling import ADAM_BETAS, MAX_BATCH_SIZE
from taichi_3dgs.training.run_length import OFFICIAL_NUM_ITERATIONS
from taichi_3dgs.training.config_loader import (
    OVERRIDE_SOURCE, ConfigError, check_bounds, marked_keys, parse_overrides, setting, to_yaml, update_from_yaml,
    yaml_key,
)
from taichi_3dgs.training.config_sections import (
    DensificationConfig, DepthLossConfig, ExposureCompensationConfig, InitialPointsConfig, LearningRateConfig,
    LoggingConfig, LossConfig, MCMCConfig, PoseOptimizationConfig, SceneInitConfig,
)


@dataclass
class TrainConfig:
    """The whole training configuration (one YAML file)."""

    train_dataset_json_path: Optional[Path] = setting(
        "train cameras JSON (docs/FORMATS.md), e.g. written by tools/prepare_colmap.py", default=None,
        cameras="train",
    )
    val_dataset_json_path: Optional[Path] = setting("val cameras JSON; null = no evaluation", default=None,
                                                    cameras="val")
    # Not read on resume (the Gaussians come from the checkpoint): it may move with the dataset folder.
    pointcloud_parquet_path: Optional[Path] = setting(
        "initial point cloud parquet, or a trained scene (.parquet/.ply) to continue from", default=None,
        resume="may-change",
    )
    num_iterations: int = setting(
        "training steps of one image each; with batch-size B, num-iterations / B steps of B images", default=30_000,
        steps=True, resume="may-change", bound=">0",
    )
    scale_schedule: bool = setting(
        "true: the step counts of the run's phases (densification warm-up and end, SH band interval, means decay "
        "length, MCMC refinement start and stop, exposure delay) "
        f"are written for the official {OFFICIAL_NUM_ITERATIONS:,}-step run and scaled by num-iterations / "
        f"{OFFICIAL_NUM_ITERATIONS:,} (rounded, at least 1), so a shortened run stops densifying and raises the "
        "SH degree in proportion (gsplat's steps_scaler, less its intervals); the densification, opacity-reset and "
        "MCMC refinement intervals, the steps a Gaussian optimises between two changes, stay as written "
        "(scaled too they lost 5.6 dB on colmap_tumbler at 1,000 steps, BENCHMARKS.md), as do val, checkpoint and logging intervals",
        default=False,
    )
    batch_size: int = setting(
        f"training cameras per optimisation step, B (1..{MAX_BATCH_SIZE}; under torchrun the global batch, split "
        "evenly over the processes): the loss is their mean, learning rates are x sqrt(B), Adam's eps / sqrt(B) and "
        "its betas 1 - B (1 - beta) (gsplat's rules); every step count of this file counts images (single-camera "
        "steps), and the trainer divides it by B, rounded up",
        default=1,
    )
    val_interval: int = setting(
        "evaluate on all val views and save scene_<step>.parquet every this many steps", default=1000,
        steps=True, resume="may-change", bound=">0",
    )
    checkpoint_interval: int = setting(
        "save a resumable checkpoint every this many steps", default=1000, steps=True, resume="may-change", bound=">0"
    )
    summary_writer_log_dir: Path = setting("TensorBoard log folder", default=Path("logs"), resume="may-change")
    output_model_dir: Path = setting(
        "folder for scenes, metrics, cameras and checkpoints", default=Path("output"), resume="may-change"
    )
    image_downscale_factor: int = setting(
        "divide image width and height by this (1 = full resolution)", default=1, bound=">0"
    )
    max_image_long_side: int = setting(
        "images still larger than this on their long side are scaled down to it (official: 1600)", default=1600,
        bound=">0",
    )
    background_color: tuple[float, float, float] = setting(
        "RGB in [0, 1] behind the Gaussians and under transparent image pixels", default=(0.0, 0.0, 0.0)
    )
    random_background: bool = setting("use a random background colour at every training step", default=False)
    seed: int = setting("seed of every random choice of the run", default=0)
    strategy: Literal["default", "mcmc"] = setting(
        "densification strategy: default (official clone/split/prune) or mcmc", default="default"
    )
    optimizer: Literal["adam", "sparse-adam"] = setting(
        "adam: torch Adam over every Gaussian (official); sparse-adam: only the Gaussians visible in the step "
        "(radius > 0 in a render of the batch, in any process) update their parameters and Adam moments "
        "(Taming 3DGS sparse Adam, with torch Adam's bias correction); the rates of learning-rates apply to both",
        default="adam",
    )
    increase_color_max_sh_band_interval: int = setting(
        "raise the active SH degree by one every this many steps", default=1000, steps=True, schedule=True, bound=">0"
    )
    rasterisation_config: RasterizerConfig = setting(
        "rasterizer constants (docs/FORMATS.md); the colour activation comes from the scene, and the "
        "saved scenes record antialiased for their renderers",
        default_factory=RasterizerConfig,
    )
    gaussian_point_cloud_scene_config: SceneInitConfig = setting(
        "initialisation from the point cloud", default_factory=SceneInitConfig
    )
    initial_points: InitialPointsConfig = setting(
        "initial Gaussians added where the point cloud is thin (background)", default_factory=InitialPointsConfig
    )
    learning_rates: LearningRateConfig = setting("Adam learning rates", default_factory=LearningRateConfig)
    loss_function_config: LossConfig = setting("photometric loss", default_factory=LossConfig)
    adaptive_controller_config: DensificationConfig = setting(
        "densification for strategy: default", strategy="default", default_factory=DensificationConfig
    )
    mcmc_config: MCMCConfig = setting("relocation and growth for strategy: mcmc", strategy="mcmc",
                                    default_factory=MCMCConfig)
    pose_optimization: bool = setting(
        "learn a pose correction per training camera (pose-optimization-config); val cameras are not corrected",
        default=False,
    )
    pose_optimization_config: PoseOptimizationConfig = setting(
        "camera pose optimisation", default_factory=PoseOptimizationConfig
    )
    exposure_compensation: bool = setting(
        "learn an affine colour transform per training image, applied to its renders in the loss only "
        "(exposure-compensation-config)", default=False,
    )
    exposure_compensation_config: ExposureCompensationConfig = setting(
        "per-image exposure compensation", default_factory=ExposureCompensationConfig
    )
    depth_loss: bool = setting(
        "add the depth loss (depth-loss-config) for the training views whose camera record names a depth map "
        "(depth_path, docs/FORMATS.md)", default=False,
    )
    depth_loss_config: DepthLossConfig = setting("depth supervision", default_factory=DepthLossConfig)
    logging: LoggingConfig = setting(
        "TensorBoard, progress output and validation metrics", default_factory=LoggingConfig, resume="may-change"
    )

# Dotted YAML keys whose values count single-camera steps (images), divided by the batch size.
STEP_COUNT_KEYS = marked_keys(TrainConfig, "steps")
SCHEDULE_KEYS = marked_keys(TrainConfig, "schedule")
# Keys (a section covers its keys) that may differ between a checkpoint and the run resuming it.
# num-iterations: a run may be made longer (or shorter); the means' learning-rate decay then
# follows the new length (learning-rates.means-max-steps null).
RESUMABLE_KEYS = marked_keys(TrainConfig, "resume", "may-change")
# {split: key} of the camera paths, compared on resume by the cameras' content, not by path.
CAMERA_KEYS = {split: key for split in ("train", "val") for key in marked_keys(TrainConfig, "cameras", split)}


def strategy_sections() -> dict[str, str]:
    """{strategy name: YAML key of its config section}, from the sections' `strategy` markers."""
    return {f.metadata["strategy"]: yaml_key(f.name) for f in dataclasses.fields(TrainConfig)
            if "strategy" in f.metadata}


def strategy_settings(config: TrainConfig) -> Any:
    """The config section of the strategy `config.strategy` names."""
    return getattr(config, strategy_sections()[config.strategy].replace("-", "_"))


def _check(config: TrainConfig, source: str) -> None:
    """Range checks that types alone do not express: the fields' `bound` markers
    (`config_loader.check_bounds`), then the checks of several values or with their own reason."""
    check_bounds(config, source)
    if not 1 <= config.batch_size <= MAX_BATCH_SIZE:
        raise ConfigError(
            f"{source}: key 'batch-size' must be 1..{MAX_BATCH_SIZE}, got {config.batch_size!r}: with B cameras per "
            f"step Adam's beta1 becomes 1 - B (1 - {ADAM_BETAS[0]}) (gsplat's batch scaling), which is <= 0 from "
            f"B = {MAX_BATCH_SIZE + 1}"
        )
    if config.seed < 0:
        raise ConfigError(f"{source}: key 'seed' must be >= 0 (numpy's generators take non-negative seeds), "
                          f"got {config.seed}")
    if not all(0.0 <= c <= 1.0 for c in config.background_color):
        raise ConfigError(f"{source}: key 'background-color' must hold 3 values in [0, 1], got {config.background_color}")
    scene = config.gaussian_point_cloud_scene_config
    if not 0 <= scene.max_sh_degree <= MAX_SH_DEGREE:
        raise ConfigError(f"{source}: key 'gaussian-point-cloud-scene-config.max-sh-degree' must be 0..3")
    if not 0.0 < scene.initial_opacity < 1.0:
        raise ConfigError(f"{source}: key 'gaussian-point-cloud-scene-config.initial-opacity' must be in (0, 1)")
    points = config.initial_points
    for key, count in (("random-in-view-volume", points.random_in_view_volume), ("far-shell", points.far_shell),
                       ("beyond-cloud", points.beyond_cloud), ("camera-shell", points.camera_shell)):
        if count < 0:
            raise ConfigError(f"{source}: key 'initial-points.{key}' must be >= 0 (0 = none), got {count}")
    for key, (near, far) in (("view-volume-depth-quantiles", points.view_volume_depth_quantiles),
                             ("beyond-cloud-depth-quantiles", points.beyond_cloud_depth_quantiles)):
        if not 0.0 <= near < far <= 1.0:
            raise ConfigError(f"{source}: key 'initial-points.{key}' must be [near, far] with 0 <= near < far <= 1, "
                              f"got {[near, far]}")
    if not points.beyond_cloud_far_factor >= 1.0:
        raise ConfigError(f"{source}: key 'initial-points.beyond-cloud-far-factor' must be >= 1 (units of the far "
                          f"depth quantile: the points reach past it), got {points.beyond_cloud_far_factor!r}")
    if not points.camera_shell_radius > 1.0:
        raise ConfigError(f"{source}: key 'initial-points.camera-shell-radius' must be > 1 (units of the cameras' "
                          f"distance from their centre: the shell lies behind it), got {points.camera_shell_radius!r}")
    if not points.far_shell_radius > 1.0:
        raise ConfigError(f"{source}: key 'initial-points.far-shell-radius' must be > 1 (scene extents: the shell "
                          f"must enclose the cameras), got {points.far_shell_radius!r}")
    if config.loss_function_config.ssim_window_size % 2 != 1:
        raise ConfigError(f"{source}: key 'loss-function-config.ssim-window-size' must be odd")
    exposure = config.exposure_compensation_config
    if not 0.0 <= exposure.learning_rate_delay_mult <= 1.0:
        raise ConfigError(f"{source}: key 'exposure-compensation-config.learning-rate-delay-mult' must be in "
                          f"[0, 1], got {exposure.learning_rate_delay_mult!r}")


def parse_train_config(data: Any, source: str = "<config>", base_dir: Path | None = None) -> TrainConfig:
    """Build a TrainConfig from a parsed YAML mapping.

    Args:
        data: the mapping (kebab-case or snake_case keys; missing keys take their defaults).
        source: name used in error messages (the file path).
        base_dir: folder that relative paths are resolved against (default: working directory).

    Raises:
        ConfigError: unknown key (with the closest valid keys), wrong type or out-of-range value.
    """
    config = update_from_yaml(TrainConfig(), data, "", source, Path(base_dir or Path.cwd()).resolve())
    _check(config, source)
    return config


def apply_overrides(config: TrainConfig, arguments: Sequence[str]) -> TrainConfig:
    """`config` with the command-line overrides `arguments` (`parse_overrides`) applied, checked
    exactly as keys of the YAML file are; relative paths resolve against the working directory.

    Raises:
        ConfigError: a malformed override, an unknown key (with the closest valid ones), a wrong
            type or an out-of-range value; the message says it comes from the command line.
    """
    if not arguments:
        return config
    updated = update_from_yaml(config, parse_overrides(arguments), "", OVERRIDE_SOURCE, Path.cwd().resolve())
    _check(updated, OVERRIDE_SOURCE)
    return updated


def load_train_config(path: str | Path) -> TrainConfig:
    """Read and validate a training YAML; relative paths resolve against the file's folder.

    Raises:
        ConfigError: the file is missing or is not valid YAML, or `parse_train_config` rejects it.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    return parse_train_config(data, str(path), path.resolve().parent)


def require_paths(config: TrainConfig, source: str) -> None:
    """Check that the keys a training run needs are set.

    Raises:
        ConfigError: `train-dataset-json-path` or `pointcloud-parquet-path` is null.
    """
    for key in ("train_dataset_json_path", "pointcloud_parquet_path"):
        if getattr(config, key) is None:
            raise ConfigError(
                f"{source}: key '{yaml_key(key)}' is not set; tools/prepare_colmap.py (or the other "
                "tools/prepare_*.py) writes the files it needs"
            )


def config_to_yaml(config: TrainConfig, comments: bool = True) -> str:
    """The YAML text of `config`, every key written, kebab-case; with each field's help as a comment.

    `load_train_config` of this text (in the same folder, for relative paths) gives back `config`.
    """
    return to_yaml(config, comments)


def write_config_template(path: str | Path) -> None:
    """Write the full default config (every key, with comments) to `path`, atomically.

    Raises:
        ConfigError: `path` already exists (a template never overwrites a user's config).
    """
    path = Path(path)
    if path.exists():
        raise ConfigError(f"{path}: already exists; choose another path for the template")
    write_text_atomic(path, config_to_yaml(TrainConfig()))
