"""The sections of the training config (`TrainConfig`'s nested mappings), one dataclass each.

Defaults follow the official 3DGS code (graphdeco-inria `arguments/__init__.py`, `train.py`)
unless a field's help says otherwise. Field metadata (`config_loader.setting`) carries each key's
help and markers: `steps=True` on a value that counts single-camera steps.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from taichi_3dgs.metrics import SSIM_SIGMA, SSIM_WINDOW_SIZE
from taichi_3dgs.training.config_loader import setting


@dataclass
class SceneInitConfig:
    """How Gaussians are created from the input point cloud (official `create_from_pcd`)."""

    max_sh_degree: int = setting("highest spherical-harmonics degree trained (0..3)", default=3)
    initial_opacity: float = setting("opacity of new Gaussians, in (0, 1)", default=0.1)
    num_neighbours: int = setting(
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

    random_in_view_volume: int = setting(
        "add this many points uniform in the union of the training cameras' view frusta, each frustum cut to the "
        "depths at which its camera sees the point cloud (view-volume-depth-quantiles); each takes the colour of "
        "the pixel it was drawn through", default=0
    )
    view_volume_depth_quantiles: tuple[float, float] = setting(
        "(near, far) quantiles of the depths of the cloud's points a camera sees, bounding its frustum; a camera "
        "that sees none takes those of all cameras' depths", default=(0.01, 0.99)
    )
    far_shell: int = setting(
        "add this many points uniform on a sphere about the training cameras' centroid, a background of last "
        "resort (as hierarchical 3DGS's skybox); each takes the mean colour of the pixels it projects to, grey "
        "0.5 where no camera sees it", default=0
    )
    far_shell_radius: float = setting(
        "radius of the far shell in units of the scene extent (1.1 x the largest camera distance from the "
        "centroid), > 1 so that it encloses every camera", default=10.0
    )
    beyond_cloud: int = setting(
        "add this many points on random training pixel rays (every pixel equally likely), at camera depths uniform "
        "in inverse depth from the near quantile of the depths at which that camera sees the point cloud to "
        "beyond-cloud-far-factor x its far quantile (beyond-cloud-depth-quantiles): what lies behind an object "
        "capture's cloud starts covered; each takes the colour of its pixel", default=0
    )
    beyond_cloud_depth_quantiles: tuple[float, float] = setting(
        "(near, far) quantiles of the depths of the cloud's points a camera sees, for beyond-cloud", default=(0.05, 0.95)
    )
    beyond_cloud_far_factor: float = setting(
        "farthest beyond-cloud depth in units of each camera's far quantile, >= 1", default=2.0
    )
    camera_shell: int = setting(
        "add this many points uniform on a sphere about the point the training cameras look at (closest to all "
        "optical axes), sized from the cameras (camera-shell-radius) for the room around an object capture, "
        "where far-shell's is sized for a sky; colours as far-shell's. Needs cameras around a common centre", default=0
    )
    camera_shell_radius: float = setting(
        "radius of the camera shell in units of the cameras' median distance from the point they look at, > 1",
        default=2.5
    )


@dataclass
class LearningRateConfig:
    """Adam learning rates per parameter (official `OptimizationParams`)."""

    means: float = setting("initial learning rate of the means, times the scene extent", default=1.6e-4)
    means_final: float = setting("final learning rate of the means, times the scene extent", default=1.6e-6)
    means_max_steps: Optional[int] = setting(
        "steps of the exponential decay of the means' rate; null = num-iterations", default=None, steps=True, schedule=True
    )
    sh_dc: float = setting("SH degree-0 (base colour) coefficients", default=2.5e-3)
    sh_rest: float = setting("SH coefficients of degree >= 1 (official: sh-dc / 20)", default=2.5e-3 / 20)
    opacity: float = setting("opacity logits", default=5e-2)
    scales: float = setting("log scales", default=5e-3)
    quats: float = setting("quaternions", default=1e-3)
    adam_eps: float = setting("Adam epsilon (official 1e-15)", default=1e-15)


@dataclass
class LossConfig:
    """Photometric loss (1 - lambda) L1 + lambda (1 - SSIM) (3DGS paper, eq. 7)."""

    lambda_value: float = setting("weight of the D-SSIM term", default=0.2)
    ssim_window_size: int = setting("side of the Gaussian SSIM window in pixels", default=SSIM_WINDOW_SIZE)
    ssim_sigma: float = setting("standard deviation of the SSIM window in pixels", default=SSIM_SIGMA)


@dataclass
class DensificationConfig:
    """Adaptive density control of the official code (`strategy: default`).

    Densification runs at steps s with `num-iterations-warm-up < s < densify-until-iteration` and
    s % `num-iterations-densify` == 0 (steps count from 1, as the official `iteration`).
    """

    num_iterations_warm_up: int = setting(
        "no densification up to this step (official densify_from_iter)", default=500, steps=True, schedule=True
    )
    num_iterations_densify: int = setting(
        "densify every this many steps (the steps a Gaussian optimises between two densifications: not scaled by "
        "scale-schedule)", default=100, steps=True, bound=">0"
    )
    densify_until_iteration: int = setting("no densification from this step on", default=15_000, steps=True, schedule=True)
    densification_view_space_position_gradients_threshold: float = setting(
        "clone/split when the mean view-space gradient norm (NDC units) is above this", default=2e-4
    )
    absgrad: bool = setting(
        "densify on the norm of the per-pixel absolute view-space gradients summed over pixels instead of the "
        "norm of their sum (AbsGS, Ye et al. 2024; gsplat's absgrad), compared with absgrad-threshold: reaches "
        "large Gaussians over detailed areas, whose per-pixel gradients cancel", default=False
    )
    absgrad_threshold: float = setting(
        "with absgrad: clone/split when the mean absolute-gradient norm (NDC units) is above this (gsplat's "
        "recommended grow_grad2d with absgrad)", default=8e-4, bound=">0"
    )
    percent_dense: float = setting(
        "clone when the largest scale is <= percent-dense x extent, else split", default=0.01
    )
    num_split_samples: int = setting("Gaussians one split Gaussian becomes", default=2)
    gaussian_split_factor_phi: float = setting("split children's scales are divided by this", default=1.6)
    transparent_opacity_threshold: float = setting("prune Gaussians with opacity below this", default=0.005)
    num_iterations_reset_alpha: int = setting(
        "reset opacities every this many steps, while densifying (the steps opacities have to recover: not scaled by "
        "scale-schedule)", default=3000, steps=True, bound=">0"
    )
    reset_opacity_value: float = setting("opacities are reset to min(current, this)", default=0.01)
    max_screen_radius: float = setting(
        "after the first reset, prune Gaussians whose screen radius exceeded this (pixels)", default=20.0
    )
    max_world_size_ratio: float = setting(
        "after the first reset, prune Gaussians whose largest scale exceeds this x extent", default=0.1
    )


@dataclass
class MCMCConfig:
    """3DGS as Markov Chain Monte Carlo (Kheradmand et al. 2024; defaults of gsplat's MCMCStrategy)."""

    cap_max: int = setting("maximum number of Gaussians", default=1_000_000)
    growth_rate: float = setting("relative growth of the count per refine step", default=0.05)
    refine_start_iteration: int = setting("no relocation/growth up to this step", default=500, steps=True, schedule=True)
    refine_stop_iteration: int = setting("no relocation/growth from this step on", default=25_000, steps=True, schedule=True)
    refine_every: int = setting(
        "relocate and grow every this many steps (not scaled by scale-schedule)", default=100, steps=True, bound=">0"
    )
    min_opacity: float = setting("Gaussians with opacity <= this are dead and relocated", default=0.005)
    noise_lr: float = setting("position noise scale, times the current means learning rate", default=5e5)
    opacity_reg: float = setting("weight of the L1 regulariser on opacities", default=0.01)
    scale_reg: float = setting("weight of the L1 regulariser on scales", default=0.01)


@dataclass
class PoseOptimizationConfig:
    """Learnt correction of each training camera's pose (`pose-optimization: true`; gsplat's pose_opt).

    A 6-vector per training camera (translation in units of the scene extent, rotation vector in
    radians) composes with the camera-to-world pose in the camera's own frame; its own Adam,
    defaults of gsplat's `simple_trainer.py` (whose world is normalised to about unit size).
    `start-iteration` and `remove-common-motion` are this project's (off by default); the setting
    measured for 1,000-step runs on poses known to be off is in BENCHMARKS.md ("Where the good
    poses go").
    """

    learning_rate: float = setting(
        "initial Adam learning rate of the corrections (gsplat pose_opt_lr)", default=1e-5, bound=">0"
    )
    learning_rate_final: float = setting(
        "the rate decays log-linearly to this at num-iterations (gsplat: 0.01 x learning-rate)", default=1e-7,
        bound=">0",
    )
    weight_decay: float = setting(
        "L2 regularisation of the corrections towards zero, Adam weight decay (gsplat pose_opt_reg)", default=1e-6,
        bound=">=0",
    )
    start_iteration: int = setting(
        "the corrections stay zero up to this step and Adam starts here (0 = from the first step)", default=0,
        steps=True, schedule=True, bound=">=0"
    )
    remove_common_motion: bool = setting(
        "after each step remove the corrections' common similarity motion of all cameras, which the loss "
        "cannot see (training/pose_gauge.py)", default=False,
    )


@dataclass
class ExposureCompensationConfig:
    """Learnt affine colour transform per training image (`exposure-compensation: true`).

    The official 3DGS exposure optimisation: its own Adam, the rate from the official
    `get_expon_lr_func` with the official defaults (`exposure_lr_*` of `arguments/__init__.py`);
    two additions of this project, each measured on real scenes (BENCHMARKS.md): the transforms'
    mean is kept at the identity and each transform is regularised towards it.
    """

    learning_rate: float = setting("initial learning rate (official exposure_lr_init)", default=0.01, bound=">0")
    learning_rate_final: float = setting(
        "the rate decays log-linearly to this at num-iterations (official exposure_lr_final)", default=0.001, bound=">0"
    )
    learning_rate_delay_steps: int = setting(
        "steps over which the rate eases in from learning-rate-delay-mult x (official exposure_lr_delay_steps; "
        "0 = no delay)", default=0, steps=True, schedule=True, bound=">=0"
    )
    learning_rate_delay_mult: float = setting(
        "factor of the rate at step 0 while delayed (official exposure_lr_delay_mult)", default=0.0
    )
    weight_decay: float = setting(
        "L2 regularisation of each transform towards the identity [I | 0]: weight-decay x (T - I) is added to "
        "its gradient before every Adam step (as pose-optimization-config.weight-decay). It keeps the transforms "
        "from taking over the scene's colours (BENCHMARKS.md) and pulls fitted gains slightly towards 1; 0 = the "
        "official free transforms", default=0.1, bound=">=0"
    )
    keep_mean_identity: bool = setting(
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

    weight: float = setting(
        "weight of the depth loss at the start (official depth_l1_weight_init)", default=1.0, bound=">0"
    )
    weight_final: float = setting(
        "the weight decays log-linearly to this at num-iterations (official depth_l1_weight_final)", default=0.01,
        bound=">0",
    )


@dataclass
class LoggingConfig:
    """TensorBoard, progress output and what validation reports."""

    log_loss_interval: int = setting("write train scalars every this many steps", default=10, steps=True, bound=">0")
    num_log_images: int = setting(
        "val views logged as image grids (prediction | ground truth | depth | |error|)", default=3
    )
    log_histograms: bool = setting("write parameter histograms at each evaluation", default=True)
    progress_bar: bool = setting("show a tqdm progress bar", default=True)
    lpips_weights: Optional[Path] = setting(
        "LPIPS AlexNet weights file (docs/FORMATS.md, written by tools/make_lpips_weights.py; nothing is "
        "downloaded): validation then also reports val LPIPS; null = no LPIPS", default=None,
    )
