"""Typed training configuration read from YAML.

The YAML keeps the original Taichi 3DGS project's style: kebab-case keys (snake_case accepted),
its top-level key names (`train-dataset-json-path`, `num-iterations`, `val-interval`, ...) and its
nested sections (`rasterisation-config`, `adaptive-controller-config`, `loss-function-config`,
`gaussian-point-cloud-scene-config`). Defaults follow the official 3DGS code (graphdeco-inria
`arguments/__init__.py`, `train.py`) unless a field's help says otherwise.

Every key is checked: an unknown or misspelled key is an error naming the key, the file and the
closest valid keys (never silently ignored, unlike the original loader); a value of the wrong type
is an error naming the key, the file and the expected type. Relative paths are resolved against
the folder of the YAML file, so a config works from any working directory.
"""
from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

import yaml

from taichi_3dgs.atomic_io import write_text_atomic
from taichi_3dgs.color_model import MAX_SH_DEGREE
from taichi_3dgs.metrics import SSIM_SIGMA, SSIM_WINDOW_SIZE
from taichi_3dgs.rasterizer import RasterizerConfig
from taichi_3dgs.training.batch_scaling import ADAM_BETAS, MAX_BATCH_SIZE


class ConfigError(ValueError):
    """A training config file is invalid; the message names the file, the key and the fix."""


def _help(text: str, **kwargs: Any) -> Any:
    return field(metadata={"help": text}, **kwargs)


@dataclass
class SceneInitConfig:
    """How Gaussians are created from the input point cloud (official `create_from_pcd`)."""

    max_sh_degree: int = _help("highest spherical-harmonics degree trained (0..3)", default=3)
    initial_opacity: float = _help("opacity of new Gaussians, in (0, 1)", default=0.1)
    num_neighbours: int = _help(
        "nearest neighbours whose mean squared distance sets the initial isotropic scale", default=3
    )


@dataclass
class InitialPointsConfig:
    """Initial Gaussians added where the point cloud is thin (`taichi_3dgs/data/background_points.py`).

    Structure-from-motion clouds cover the object of a capture, hardly the walls, floor or sky
    behind it. All counts default to 0 (nothing added). The added points are coloured from the
    training images (RGBA ones over `background-color`), drawn with `seed`, and initialised with the
    cloud's points by the same rule: the nearest-neighbour scale is searched among all points, so
    on the shell it is the shell's own spacing, proportional to its radius (about 2.6 x radius /
    sqrt(far-shell)). `strategy: default` prunes, after the first opacity reset, Gaussians larger
    than `max-world-size-ratio` x extent or `max-screen-radius` px: at the default radius and ratio
    that is 99 % of the shell Gaussians at 10,000 shell points, 28 % at 100,000 and 3 % at 200,000
    (until densification has split them). Not for a trained scene (`pointcloud-parquet-path` a .ply
    or trained-scene parquet).
    """

    random_in_view_volume: int = _help(
        "add this many points uniform in the union of the training cameras' view frusta, each frustum cut to the "
        "depths at which its camera sees the point cloud (view-volume-depth-quantiles); each takes the colour of "
        "the pixel it was drawn through", default=0
    )
    view_volume_depth_quantiles: tuple[float, float] = _help(
        "(near, far) quantiles of the depths of the cloud's points a camera sees, bounding its frustum; a camera "
        "that sees none takes those of all cameras' depths", default=(0.01, 0.99)
    )
    far_shell: int = _help(
        "add this many points uniform on a sphere about the training cameras' centroid, a background of last "
        "resort (as hierarchical 3DGS's skybox); each takes the mean colour of the pixels it projects to, grey "
        "0.5 where no camera sees it", default=0
    )
    far_shell_radius: float = _help(
        "radius of the far shell in units of the scene extent (1.1 x the largest camera distance from the "
        "centroid), > 1 so that it encloses every camera", default=10.0
    )
    beyond_cloud: int = _help(
        "add this many points on random training pixel rays (every pixel equally likely), at camera depths uniform "
        "in inverse depth from the near quantile of the depths at which that camera sees the point cloud to "
        "beyond-cloud-far-factor x its far quantile (beyond-cloud-depth-quantiles): what lies behind an object "
        "capture's cloud starts covered; each takes the colour of its pixel", default=0
    )
    beyond_cloud_depth_quantiles: tuple[float, float] = _help(
        "(near, far) quantiles of the depths of the cloud's points a camera sees, for beyond-cloud", default=(0.05, 0.95)
    )
    beyond_cloud_far_factor: float = _help(
        "farthest beyond-cloud depth in units of each camera's far quantile, >= 1", default=2.0
    )
    camera_shell: int = _help(
        "add this many points uniform on a sphere about the point the training cameras look at (closest to all "
        "optical axes), sized from the cameras (camera-shell-radius) for the room around an object capture, "
        "where far-shell's is sized for a sky; colours as far-shell's. Needs cameras around a common centre", default=0
    )
    camera_shell_radius: float = _help(
        "radius of the camera shell in units of the cameras' median distance from the point they look at, > 1",
        default=2.5
    )


@dataclass
class LearningRateConfig:
    """Adam learning rates per parameter (official `OptimizationParams`)."""

    means: float = _help("initial learning rate of the means, times the scene extent", default=1.6e-4)
    means_final: float = _help("final learning rate of the means, times the scene extent", default=1.6e-6)
    means_max_steps: Optional[int] = _help(
        "steps of the exponential decay of the means' rate; null = num-iterations", default=None
    )
    sh_dc: float = _help("SH degree-0 (base colour) coefficients", default=2.5e-3)
    sh_rest: float = _help("SH coefficients of degree >= 1 (official: sh-dc / 20)", default=2.5e-3 / 20)
    opacity: float = _help("opacity logits", default=5e-2)
    scales: float = _help("log scales", default=5e-3)
    quats: float = _help("quaternions", default=1e-3)
    adam_eps: float = _help("Adam epsilon (official 1e-15)", default=1e-15)


@dataclass
class LossConfig:
    """Photometric loss (1 - lambda) L1 + lambda (1 - SSIM) (3DGS paper, eq. 7)."""

    lambda_value: float = _help("weight of the D-SSIM term", default=0.2)
    ssim_window_size: int = _help("side of the Gaussian SSIM window in pixels", default=SSIM_WINDOW_SIZE)
    ssim_sigma: float = _help("standard deviation of the SSIM window in pixels", default=SSIM_SIGMA)


@dataclass
class DensificationConfig:
    """Adaptive density control of the official code (`strategy: default`).

    Densification runs at steps s with `num-iterations-warm-up < s < densify-until-iteration` and
    s % `num-iterations-densify` == 0 (steps count from 1, as the official `iteration`).
    """

    num_iterations_warm_up: int = _help("no densification up to this step (official densify_from_iter)", default=500)
    num_iterations_densify: int = _help("densify every this many steps", default=100)
    densify_until_iteration: int = _help("no densification from this step on", default=15_000)
    densification_view_space_position_gradients_threshold: float = _help(
        "clone/split when the mean view-space gradient norm (NDC units) is above this", default=2e-4
    )
    absgrad: bool = _help(
        "densify on the norm of the per-pixel absolute view-space gradients summed over pixels instead of the "
        "norm of their sum (AbsGS, Ye et al. 2024; gsplat's absgrad), compared with absgrad-threshold: reaches "
        "large Gaussians over detailed areas, whose per-pixel gradients cancel", default=False
    )
    absgrad_threshold: float = _help(
        "with absgrad: clone/split when the mean absolute-gradient norm (NDC units) is above this (gsplat's "
        "recommended grow_grad2d with absgrad)", default=8e-4
    )
    percent_dense: float = _help(
        "clone when the largest scale is <= percent-dense x extent, else split", default=0.01
    )
    num_split_samples: int = _help("Gaussians one split Gaussian becomes", default=2)
    gaussian_split_factor_phi: float = _help("split children's scales are divided by this", default=1.6)
    transparent_opacity_threshold: float = _help("prune Gaussians with opacity below this", default=0.005)
    num_iterations_reset_alpha: int = _help("reset opacities every this many steps", default=3000)
    reset_opacity_value: float = _help("opacities are reset to min(current, this)", default=0.01)
    max_screen_radius: float = _help(
        "after the first reset, prune Gaussians whose screen radius exceeded this (pixels)", default=20.0
    )
    max_world_size_ratio: float = _help(
        "after the first reset, prune Gaussians whose largest scale exceeds this x extent", default=0.1
    )


@dataclass
class MCMCConfig:
    """3DGS as Markov Chain Monte Carlo (Kheradmand et al. 2024; defaults of gsplat's MCMCStrategy)."""

    cap_max: int = _help("maximum number of Gaussians", default=1_000_000)
    growth_rate: float = _help("relative growth of the count per refine step", default=0.05)
    refine_start_iteration: int = _help("no relocation/growth up to this step", default=500)
    refine_stop_iteration: int = _help("no relocation/growth from this step on", default=25_000)
    refine_every: int = _help("relocate and grow every this many steps", default=100)
    min_opacity: float = _help("Gaussians with opacity <= this are dead and relocated", default=0.005)
    noise_lr: float = _help("position noise scale, times the current means learning rate", default=5e5)
    opacity_reg: float = _help("weight of the L1 regulariser on opacities", default=0.01)
    scale_reg: float = _help("weight of the L1 regulariser on scales", default=0.01)


@dataclass
class PoseOptimizationConfig:
    """Learnt correction of each training camera's pose (`pose-optimization: true`; gsplat's pose_opt).

    A 6-vector per training camera (translation in units of the scene extent, rotation vector in
    radians) composes with the camera-to-world pose in the camera's own frame; its own Adam,
    defaults of gsplat's `simple_trainer.py` (whose world is normalised to about unit size).
    """

    learning_rate: float = _help("initial Adam learning rate of the corrections (gsplat pose_opt_lr)", default=1e-5)
    learning_rate_final: float = _help(
        "the rate decays log-linearly to this at num-iterations (gsplat: 0.01 x learning-rate)", default=1e-7
    )
    weight_decay: float = _help(
        "L2 regularisation of the corrections towards zero, Adam weight decay (gsplat pose_opt_reg)", default=1e-6
    )


@dataclass
class ExposureCompensationConfig:
    """Learnt affine colour transform per training image (`exposure-compensation: true`).

    The official 3DGS exposure optimisation: its own Adam, the rate from the official
    `get_expon_lr_func` with the official defaults (`exposure_lr_*` of `arguments/__init__.py`);
    two additions of this project, each measured on real scenes (BENCHMARKS.md): the transforms'
    mean is kept at the identity and each transform is regularised towards it.
    """

    learning_rate: float = _help("initial learning rate (official exposure_lr_init)", default=0.01)
    learning_rate_final: float = _help(
        "the rate decays log-linearly to this at num-iterations (official exposure_lr_final)", default=0.001
    )
    learning_rate_delay_steps: int = _help(
        "steps over which the rate eases in from learning-rate-delay-mult x (official exposure_lr_delay_steps; "
        "0 = no delay)", default=0
    )
    learning_rate_delay_mult: float = _help(
        "factor of the rate at step 0 while delayed (official exposure_lr_delay_mult)", default=0.0
    )
    weight_decay: float = _help(
        "L2 regularisation of each transform towards the identity [I | 0]: weight-decay x (T - I) is added to "
        "its gradient before every Adam step (as pose-optimization-config.weight-decay). It keeps the transforms "
        "from taking over the scene's colours (BENCHMARKS.md) and pulls fitted gains slightly towards 1; 0 = the "
        "official free transforms", default=0.1
    )
    keep_mean_identity: bool = _help(
        "after each step shift every transform by the same amount so that their mean is the identity: the scene "
        "keeps the colours of the average training image (false: the official free transforms, whose common "
        "part the scene's colours can absorb, so plain renders drift from the photos' colours)", default=True
    )


@dataclass
class DepthLossConfig:
    """Depth supervision (`depth-loss: true`): L1 on inverse depth, for training views with a depth map.

    The official 3DGS depth regularisation (graphdeco `train.py`, `Ll1depth`): weight x the mean
    over the pixels with depth of |rendered inverse depth - target inverse depth|, the weight
    decaying log-linearly over the run as the official `get_expon_lr_func(depth_l1_weight_init,
    depth_l1_weight_final)`. Targets: 1 / z for metric depth maps, relative inverse depth aligned by
    scale and shift at every step (taichi_3dgs/training/depth_supervision.py).
    """

    weight: float = _help("weight of the depth loss at the start (official depth_l1_weight_init)", default=1.0)
    weight_final: float = _help(
        "the weight decays log-linearly to this at num-iterations (official depth_l1_weight_final)", default=0.01
    )


@dataclass
class LoggingConfig:
    """TensorBoard, progress output and what validation reports."""

    log_loss_interval: int = _help("write train scalars every this many steps", default=10)
    num_log_images: int = _help(
        "val views logged as image grids (prediction | ground truth | depth | |error|)", default=3
    )
    log_histograms: bool = _help("write parameter histograms at each densification step", default=True)
    progress_bar: bool = _help("show a tqdm progress bar", default=True)
    lpips_weights: Optional[Path] = _help(
        "LPIPS AlexNet weights file (docs/FORMATS.md, written by tools/make_lpips_weights.py; nothing is "
        "downloaded): validation then also reports val LPIPS; null = no LPIPS", default=None,
    )


@dataclass
class TrainConfig:
    """The whole training configuration (one YAML file)."""

    train_dataset_json_path: Optional[Path] = _help(
        "train cameras JSON (docs/FORMATS.md), e.g. written by tools/prepare_colmap.py", default=None
    )
    val_dataset_json_path: Optional[Path] = _help("val cameras JSON; null = no evaluation", default=None)
    pointcloud_parquet_path: Optional[Path] = _help(
        "initial point cloud parquet, or a trained scene (.parquet/.ply) to continue from", default=None
    )
    num_iterations: int = _help(
        "training steps of one image each; with batch-size B, num-iterations / B steps of B images", default=30_000
    )
    batch_size: int = _help(
        f"training cameras per optimisation step, B (1..{MAX_BATCH_SIZE}; under torchrun the global batch, split "
        "evenly over the processes): the loss is their mean, learning rates are x sqrt(B), Adam's eps / sqrt(B) and "
        "its betas 1 - B (1 - beta) (gsplat's rules); every step count of this file counts images (single-camera "
        "steps), and the trainer divides it by B, rounded up",
        default=1,
    )
    val_interval: int = _help("evaluate on all val views and save scene_<step>.parquet every this many steps", default=1000)
    checkpoint_interval: int = _help("save a resumable checkpoint every this many steps", default=1000)
    summary_writer_log_dir: Path = _help("TensorBoard log folder", default=Path("logs"))
    output_model_dir: Path = _help("folder for scenes, metrics, cameras and checkpoints", default=Path("output"))
    image_downscale_factor: int = _help("divide image width and height by this (1 = full resolution)", default=1)
    max_image_long_side: int = _help(
        "images still larger than this on their long side are scaled down to it (official: 1600)", default=1600
    )
    background_color: tuple[float, float, float] = _help(
        "RGB in [0, 1] behind the Gaussians and under transparent image pixels", default=(0.0, 0.0, 0.0)
    )
    random_background: bool = _help("use a random background colour at every training step", default=False)
    seed: int = _help("seed of every random choice of the run", default=0)
    strategy: Literal["default", "mcmc"] = _help(
        "densification strategy: default (official clone/split/prune) or mcmc", default="default"
    )
    optimizer: Literal["adam", "sparse-adam"] = _help(
        "adam: torch Adam over every Gaussian (official); sparse-adam: only the Gaussians visible in the step "
        "(radius > 0 in a render of the batch, in any process) update their parameters and Adam moments "
        "(Taming 3DGS sparse Adam, with torch Adam's bias correction); the rates of learning-rates apply to both",
        default="adam",
    )
    increase_color_max_sh_band_interval: int = _help(
        "raise the active SH degree by one every this many steps", default=1000
    )
    rasterisation_config: RasterizerConfig = _help(
        "rasterizer constants (docs/FORMATS.md); the colour activation comes from the scene, and the "
        "saved scenes record antialiased for their renderers",
        default_factory=RasterizerConfig,
    )
    gaussian_point_cloud_scene_config: SceneInitConfig = _help(
        "initialisation from the point cloud", default_factory=SceneInitConfig
    )
    initial_points: InitialPointsConfig = _help(
        "initial Gaussians added where the point cloud is thin (background)", default_factory=InitialPointsConfig
    )
    learning_rates: LearningRateConfig = _help("Adam learning rates", default_factory=LearningRateConfig)
    loss_function_config: LossConfig = _help("photometric loss", default_factory=LossConfig)
    adaptive_controller_config: DensificationConfig = _help(
        "densification for strategy: default", default_factory=DensificationConfig
    )
    mcmc_config: MCMCConfig = _help("relocation and growth for strategy: mcmc", default_factory=MCMCConfig)
    pose_optimization: bool = _help(
        "learn a pose correction per training camera (pose-optimization-config); val cameras are not corrected",
        default=False,
    )
    pose_optimization_config: PoseOptimizationConfig = _help(
        "camera pose optimisation", default_factory=PoseOptimizationConfig
    )
    exposure_compensation: bool = _help(
        "learn an affine colour transform per training image, applied to its renders in the loss only "
        "(exposure-compensation-config)", default=False,
    )
    exposure_compensation_config: ExposureCompensationConfig = _help(
        "per-image exposure compensation", default_factory=ExposureCompensationConfig
    )
    depth_loss: bool = _help(
        "add the depth loss (depth-loss-config) for the training views whose camera record names a depth map "
        "(depth_path, docs/FORMATS.md)", default=False,
    )
    depth_loss_config: DepthLossConfig = _help("depth supervision", default_factory=DepthLossConfig)
    logging: LoggingConfig = _help(
        "TensorBoard, progress output and validation metrics", default_factory=LoggingConfig
    )


# Fields that exist in a section's dataclass but are not settable from YAML, with the reason.
_NOT_IN_YAML = {RasterizerConfig: {"color_activation"}}  # decided by the scene being trained


def _yaml_key(name: str) -> str:
    return name.replace("_", "-")


def _yaml_fields(cls: type) -> dict[str, dataclasses.Field]:
    hidden = _NOT_IN_YAML.get(cls, set())
    return {_yaml_key(f.name): f for f in dataclasses.fields(cls) if f.name not in hidden}


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Union:
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        return f"{_type_name(args[0])} or null"
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin is tuple:
        return f"a list of {len(typing.get_args(tp))} numbers"
    if tp is Path:
        return "a path"
    if dataclasses.is_dataclass(tp):
        return "a mapping (section)"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}.get(tp, str(tp))


# A decimal number as written in YAML or on the command line (no nan, inf or hex).
_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _convert(value: Any, tp: Any, where: str, base_dir: Path) -> Any:
    """Convert a YAML value to `tp`; raise ConfigError(where) when it does not fit."""

    def wrong() -> ConfigError:
        return ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")

    origin = typing.get_origin(tp)
    if origin is typing.Union:
        if value is None:
            return None
        inner = [a for a in typing.get_args(tp) if a is not type(None)][0]
        return _convert(value, inner, where, base_dir)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise wrong()
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise wrong()
        return tuple(_convert(v, a, where, base_dir) for v, a in zip(value, args))
    if tp is bool:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-4 (no dot in the mantissa) as a string
            if not _NUMBER.fullmatch(value.strip()):
                raise wrong()
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise wrong()
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise wrong()
        path = Path(value).expanduser()
        return path if path.is_absolute() else (base_dir / path).resolve()
    raise TypeError(f"unsupported config field type {tp!r} at {where}")


def _update(obj: Any, data: Any, section: str, source: str, base_dir: Path) -> Any:
    """A copy of the config dataclass `obj` with the keys of the YAML mapping `data` set.

    Relative paths in `data` resolve against `base_dir`; so do relative default paths of keys
    `data` does not set (logs/, output/ belong beside the YAML, not in the working directory).

    Raises:
        ConfigError: an unknown key (with the closest valid ones), a key given twice (kebab-case
            and snake_case), or a value of the wrong type; the message names `source` and the key.
    """
    where = f"{source}: section '{section}'" if section else source
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of keys, got {type(data).__name__}")
    cls = type(obj)
    fields = _yaml_fields(cls)
    hints = typing.get_type_hints(cls)
    changes: dict[str, Any] = {}
    for raw_key, value in data.items():
        key = _yaml_key(str(raw_key))
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=3, cutoff=0.5)
            if close:
                hint = f"did you mean {' or '.join(repr(c) for c in close)}?"
            else:
                hint = f"valid keys: {', '.join(fields)}"
            scope = f"in section '{section}'" if section else "at top level"
            raise ConfigError(f"{source}: unknown key '{raw_key}' {scope}; {hint}")
        f = fields[key]
        if f.name in changes:
            raise ConfigError(f"{where}: key '{key}' is given twice (kebab-case and snake_case)")
        full_key = f"{section}.{key}" if section else key
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            changes[f.name] = _update(getattr(obj, f.name), value, full_key, source, base_dir)
        else:
            changes[f.name] = _convert(value, tp, f"{source}: key '{full_key}'", base_dir)
    for f in dataclasses.fields(cls):
        value = getattr(obj, f.name)
        if f.name not in changes and isinstance(value, Path) and not value.is_absolute():
            changes[f.name] = (base_dir / value).resolve()
    return dataclasses.replace(obj, **changes)


def _check(config: TrainConfig, source: str) -> None:
    """Range checks that types alone do not express."""

    def positive(key: str, value: float) -> None:
        if not value > 0:
            raise ConfigError(f"{source}: key '{key}' must be > 0, got {value!r}")

    def non_negative(key: str, value: float) -> None:
        if not value >= 0:
            raise ConfigError(f"{source}: key '{key}' must be >= 0, got {value!r}")

    positive("num-iterations", config.num_iterations)
    if not 1 <= config.batch_size <= MAX_BATCH_SIZE:
        raise ConfigError(
            f"{source}: key 'batch-size' must be 1..{MAX_BATCH_SIZE}, got {config.batch_size!r}: with B cameras per "
            f"step Adam's beta1 becomes 1 - B (1 - {ADAM_BETAS[0]}) (gsplat's batch scaling), which is <= 0 from "
            f"B = {MAX_BATCH_SIZE + 1}"
        )
    positive("val-interval", config.val_interval)
    positive("checkpoint-interval", config.checkpoint_interval)
    positive("image-downscale-factor", config.image_downscale_factor)
    positive("max-image-long-side", config.max_image_long_side)
    positive("increase-color-max-sh-band-interval", config.increase_color_max_sh_band_interval)
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
    positive("adaptive-controller-config.num-iterations-densify", config.adaptive_controller_config.num_iterations_densify)
    positive("adaptive-controller-config.num-iterations-reset-alpha", config.adaptive_controller_config.num_iterations_reset_alpha)
    positive("adaptive-controller-config.absgrad-threshold", config.adaptive_controller_config.absgrad_threshold)
    positive("mcmc-config.refine-every", config.mcmc_config.refine_every)
    positive("logging.log-loss-interval", config.logging.log_loss_interval)
    pose = config.pose_optimization_config
    positive("pose-optimization-config.learning-rate", pose.learning_rate)
    positive("pose-optimization-config.learning-rate-final", pose.learning_rate_final)
    non_negative("pose-optimization-config.weight-decay", pose.weight_decay)
    exposure = config.exposure_compensation_config
    positive("exposure-compensation-config.learning-rate", exposure.learning_rate)
    positive("exposure-compensation-config.learning-rate-final", exposure.learning_rate_final)
    non_negative("exposure-compensation-config.learning-rate-delay-steps", exposure.learning_rate_delay_steps)
    non_negative("exposure-compensation-config.weight-decay", exposure.weight_decay)
    if not 0.0 <= exposure.learning_rate_delay_mult <= 1.0:
        raise ConfigError(f"{source}: key 'exposure-compensation-config.learning-rate-delay-mult' must be in "
                          f"[0, 1], got {exposure.learning_rate_delay_mult!r}")
    positive("depth-loss-config.weight", config.depth_loss_config.weight)
    positive("depth-loss-config.weight-final", config.depth_loss_config.weight_final)


def parse_train_config(data: Any, source: str = "<config>", base_dir: Path | None = None) -> TrainConfig:
    """Build a TrainConfig from a parsed YAML mapping.

    Args:
        data: the mapping (kebab-case or snake_case keys; missing keys take their defaults).
        source: name used in error messages (the file path).
        base_dir: folder that relative paths are resolved against (default: working directory).

    Raises:
        ConfigError: unknown key (with the closest valid keys), wrong type or out-of-range value.
    """
    config = _update(TrainConfig(), data, "", source, Path(base_dir or Path.cwd()).resolve())
    _check(config, source)
    return config


OVERRIDE_SOURCE = "command line"


def parse_overrides(arguments: Sequence[str]) -> dict[str, Any]:
    """The nested YAML mapping of command-line overrides `--key value` / `--key=value`.

    Keys are YAML keys (kebab-case or snake_case), nested keys joined with dots
    (`--adaptive-controller-config.densify-until-iteration 1000`); values are parsed as YAML
    (`5`, `0.5`, `true`, `null`, `[1, 1, 1]`, a path).

    Raises:
        ConfigError: an argument that is not `--key`, a key without a value, a value that is not
            YAML, or a key given twice.
    """
    overrides: dict[str, Any] = {}
    index = 0
    while index < len(arguments):
        token = arguments[index]
        if not token.startswith("--") or len(token) == 2:
            raise ConfigError(f"{OVERRIDE_SOURCE}: unexpected argument {token!r}; a config override is "
                              "--KEY VALUE (any YAML key, nested keys joined with dots)")
        name, has_value, text = token[2:].partition("=")
        if not has_value:
            if index + 1 >= len(arguments) or arguments[index + 1].startswith("--"):
                raise ConfigError(f"{OVERRIDE_SOURCE}: --{name} needs a value (--{name} VALUE)")
            index += 1
            text = arguments[index]
        index += 1
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"{OVERRIDE_SOURCE}: --{name}: {text!r} is not a YAML value") from None
        *sections, key = name.split(".")
        node = overrides
        for part in sections:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{OVERRIDE_SOURCE}: --{name}: '{part}' is given a value and nested keys")
        if key in node:
            raise ConfigError(f"{OVERRIDE_SOURCE}: --{name} is given twice")
        node[key] = value
    return overrides


def apply_overrides(config: TrainConfig, arguments: Sequence[str]) -> TrainConfig:
    """`config` with the command-line overrides `arguments` (`parse_overrides`) applied, checked
    exactly as keys of the YAML file are; relative paths resolve against the working directory.

    Raises:
        ConfigError: a malformed override, an unknown key (with the closest valid ones), a wrong
            type or an out-of-range value; the message says it comes from the command line.
    """
    if not arguments:
        return config
    updated = _update(config, parse_overrides(arguments), "", OVERRIDE_SOURCE, Path.cwd().resolve())
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
                f"{source}: key '{_yaml_key(key)}' is not set; tools/prepare_colmap.py (or the other "
                "tools/prepare_*.py) writes the files it needs"
            )


def _plain(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def config_to_yaml(config: TrainConfig, comments: bool = True) -> str:
    """The YAML text of `config`, every key written, kebab-case; with each field's help as a comment.

    `load_train_config` of this text (in the same folder, for relative paths) gives back `config`.
    """
    lines: list[str] = []

    def emit(obj: Any, indent: str) -> None:
        for key, f in _yaml_fields(type(obj)).items():
            value = getattr(obj, f.name)
            help_text = f.metadata.get("help")
            if comments and help_text:
                lines.append(f"{indent}# {help_text}")
            if dataclasses.is_dataclass(value):
                lines.append(f"{indent}{key}:")
                emit(value, indent + "  ")
            else:
                dumped = yaml.safe_dump({key: _plain(value)}, default_flow_style=True, width=1_000_000).strip()
                lines.append(f"{indent}{dumped[1:-1] if dumped.startswith('{') else dumped}")

    emit(config, "")
    return "\n".join(lines) + "\n"


def write_config_template(path: str | Path) -> None:
    """Write the full default config (every key, with comments) to `path`, atomically.

    Raises:
        ConfigError: `path` already exists (a template never overwrites a user's config).
    """
    path = Path(path)
    if path.exists():
        raise ConfigError(f"{path}: already exists; choose another path for the template")
    write_text_atomic(path, config_to_yaml(TrainConfig()))
