"""Depth supervision: the inverse-depth L1 loss of training views and the depth error of val views.

Loss (official 3DGS depth regularisation, graphdeco `train.py`): for a training view with a depth
map (`View.depth`, docs/FORMATS.md "Camera JSON"),

    L_depth = w(step) x mean over valid pixels of |D_inv - D_target|,

with D_inv = sum_i alpha_i T_i / z_i the rasterizer's inverse-depth image (`rasterize(...,
render_inverse_depth=True)`, the official `invDepth`), w(step) decaying log-linearly from
`depth-loss-config.weight` to `weight-final` over the run (official `get_expon_lr_func`), and
valid = the pixels with depth (> 0) that the view's mask keeps. The official code averages
|D_inv - D_target| x mask over every pixel; the mean over the valid pixels here keeps the loss's
scale independent of how much of the image has depth.

Targets, by the record's depth_type:
- metric (camera z in world units): D_target = 1 / z.
- inverse (relative inverse depth t, e.g. Depth Anything's, unknown scale and shift):
  D_target = s t + b, with (s, b) the least-squares fit of t onto the detached render D_inv over
  the valid pixels where the rendered alpha > ALIGNMENT_MIN_ALPHA, recomputed at every step
  (`align_scale_shift`). The official code fits one scale and shift per image once, before
  training (`utils/make_depth_scale.py`), against the inverse depths of the COLMAP points seen
  in that image; those points and their per-image tracks are not part of this package's camera
  JSON and point cloud (and do not exist for the Instant-NGP and Blender converters), so the
  current render takes their place: covered pixels only, since a half-transparent render's
  inverse depth is scaled down by its alpha. The fit has no gradient; a view whose fit is
  degenerate (fewer than 2 such pixels, constant t, or s <= 0: rendered and target depth order
  disagree) adds no depth loss at that step.

Val depth error (`depth_error`): for metric maps the mean absolute relative error
|d - z| / z over the valid pixels of the alpha-normalised rendered depth d (`RasterizeOutput.depth`,
0 where nothing is drawn); for inverse maps the same error of the inverse depth 1 / d against
the target aligned onto it (over the valid pixels with alpha > ALIGNMENT_MIN_ALPHA).
"""
from __future__ import annotations

import warnings
from typing import Optional, Sequence

import torch

from taichi_3dgs.data.views import View
from taichi_3dgs.metrics import masked_mean
from taichi_3dgs.training.config import ConfigError, TrainConfig
from taichi_3dgs.training.config_sections import DepthLossConfig
from taichi_3dgs.training.optimization import exponential_learning_rate

# Rendered alpha above which a pixel takes part in the scale/shift fit of a relative depth map.
ALIGNMENT_MIN_ALPHA = 0.5


def depth_loss_weight(step: int, config: DepthLossConfig, num_iterations: int) -> float:
    """w(step): log-linear from config.weight at step 0 to config.weight_final at num_iterations
    (the official `get_expon_lr_func(depth_l1_weight_init, depth_l1_weight_final, max_steps=iterations)`)."""
    return exponential_learning_rate(step, config.weight, config.weight_final, num_iterations)


def align_scale_shift(source: torch.Tensor, target: torch.Tensor,
                      mask: torch.Tensor) -> Optional[tuple[float, float]]:
    """(s, b) minimising sum over mask of (s source + b - target)^2, in closed form (float64).

    s = cov(source, target) / var(source), b = mean(target) - s mean(source) over the masked pixels.

    Args:
        source, target: float [H, W] tensors on one device.
        mask: bool [H, W], the pixels of the fit.

    Returns:
        (s, b), or None when fewer than 2 pixels are masked or source is constant on them.
    """
    x, y = source[mask].double(), target[mask].double()
    if x.numel() < 2:
        return None
    x_mean, y_mean = x.mean(), y.mean()
    variance = ((x - x_mean) ** 2).mean()
    # Relative test: a map whose masked values are all equal up to float32 rounding is constant.
    if not float(variance) > 1e-12 * float(x_mean**2 + variance):
        return None
    scale = ((x - x_mean) * (y - y_mean)).mean() / variance
    return float(scale), float(y_mean - scale * x_mean)


def _valid(view: View) -> torch.Tensor:
    valid = view.depth > 0
    return valid if view.mask is None else valid & view.mask


def unusable_depth_map(view: View) -> Optional[str]:
    """Why the depth map of training view `view` can never add a depth loss, or None if it can.

    It cannot when it has no valid pixel (every value 0, i.e. no depth, or masked out), or when it
    is a relative inverse map that is constant over its valid pixels (or has one): its scale and
    shift fit (`align_scale_shift`) is then degenerate at every step.
    """
    valid = _valid(view)
    if not bool(valid.any()):
        return "holds no depth (every pixel 0 or masked out)"
    if view.camera.depth_type == "inverse" and align_scale_shift(view.depth, view.depth, valid) is None:
        return "is a relative inverse depth map that is constant, so its scale and shift cannot be fitted"
    return None


def check_depth_supervision(config: TrainConfig, train_views: Sequence[View], source: str) -> None:
    """Refuse `depth-loss: true` when no training depth map can supervise (`unusable_depth_map`:
    all empty, or relative maps that are constant); warn, naming them, when only some cannot.

    Raises:
        ConfigError: every training view's depth map is unusable; names the key, the camera JSON,
            the first view and why.
    """
    with_maps = [view for view in train_views if view.depth is not None]
    unusable = [(view.name, why) for view in with_maps if (why := unusable_depth_map(view)) is not None]
    if not unusable:
        return
    first, why = unusable[0]
    more = f" (and {len(unusable) - 1} more)" if len(unusable) > 1 else ""
    if len(unusable) == len(with_maps):
        raise ConfigError(f"{source}: key 'depth-loss' is true but no depth map of key 'train-dataset-json-path' "
                          f"({config.train_dataset_json_path}) can supervise: the one of {first} {why}{more}; "
                          "expected maps with depth (docs/FORMATS.md), or depth-loss: false")
    warnings.warn(f"{len(unusable)} of the {len(with_maps)} training depth maps add no depth loss: the one of "
                  f"{first} {why}{more}")


def target_inverse_depth(view: View, inverse_depth: torch.Tensor,
                         alpha: torch.Tensor) -> Optional[tuple[torch.Tensor, torch.Tensor]]:
    """The inverse depth the render of `view` is compared with (module docstring).

    Args:
        view: a view with a depth map (`View.depth` not None).
        inverse_depth: [H, W] the render's inverse depth (only its values are used).
        alpha: [H, W] the render's alpha.

    Returns:
        (target [H, W] float32, valid [H, W] bool, the pixels that count), or None for a relative
        depth map whose scale/shift fit is degenerate.
    """
    valid = _valid(view)
    if view.camera.depth_type == "metric":
        return torch.where(valid, 1.0 / torch.where(valid, view.depth, 1.0), 0.0), valid
    fit = align_scale_shift(view.depth, inverse_depth.detach(), valid & (alpha.detach() > ALIGNMENT_MIN_ALPHA))
    if fit is None or fit[0] <= 0.0:
        return None
    scale, shift = fit
    return scale * view.depth + shift, valid


def depth_loss(view: View, inverse_depth: torch.Tensor, alpha: torch.Tensor) -> Optional[torch.Tensor]:
    """mean over the valid pixels of |inverse_depth - target| (unweighted; `depth_loss_weight`).

    Args:
        view: a training view with a depth map.
        inverse_depth: [H, W] `RasterizeOutput.inverse_depth` of its render (differentiable).
        alpha: [H, W] the render's alpha (for the alignment of relative depth maps).

    Returns:
        A scalar tensor, or None when a relative map cannot be aligned at this step.
    """
    target = target_inverse_depth(view, inverse_depth, alpha)
    if target is None:
        return None
    target, valid = target
    return masked_mean((inverse_depth - target).abs()[..., None], valid)


@torch.no_grad()
def depth_error(view: View, depth: torch.Tensor, alpha: torch.Tensor) -> Optional[float]:
    """Mean absolute relative error of a val render's depth against `view`'s depth map (module docstring).

    Args:
        view: a view with a depth map.
        depth: [H, W] `RasterizeOutput.depth`, alpha-normalised camera z (0 where nothing is drawn).
        alpha: [H, W] the render's alpha.

    Returns:
        The error (a fraction: 0.05 = 5 %), or None when the map has no valid pixel (or, for a
        relative map, cannot be aligned).
    """
    valid = _valid(view)
    if view.camera.depth_type == "metric":
        if not bool(valid.any()):
            return None
        return float(((depth - view.depth).abs() / view.depth)[valid].mean())
    covered = valid & (alpha > ALIGNMENT_MIN_ALPHA) & (depth > 0)
    inverse = torch.where(covered, 1.0 / torch.where(covered, depth, 1.0), 0.0)
    fit = align_scale_shift(view.depth, inverse, covered)
    if fit is None:
        return None
    aligned = fit[0] * view.depth + fit[1]
    counted = covered & (aligned > 0)
    if not bool(counted.any()):
        return None
    return float(((inverse - aligned).abs() / aligned)[counted].mean())
