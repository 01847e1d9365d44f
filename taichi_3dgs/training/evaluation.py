"""Rendering views of a model and scoring them (PSNR, SSIM, optionally LPIPS), as the official
`render.py` + `metrics.py`: renders clamped to [0, 1], scores per view, means over the views; for
views with a depth map also the depth error (`depth_supervision.depth_error`), its mean over those
views. In data-parallel training each process scores its share of the views and the scores are
gathered (`evaluate_across_ranks`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence

import torch

from taichi_3dgs.atomic_io import write_text_atomic
from taichi_3dgs.data.views import View
from taichi_3dgs.lpips import LPIPS
from taichi_3dgs.metrics import SSIM_SIGMA, SSIM_WINDOW_SIZE, psnr, ssim
from taichi_3dgs.rasterizer import RasterizerConfig, rasterize
from taichi_3dgs.scene.model import GaussianModel
from taichi_3dgs.training.depth_supervision import depth_error
from taichi_3dgs.training.distributed import World


def render_model_view(model: GaussianModel, view: View, config: RasterizerConfig, background: torch.Tensor,
                render_inverse_depth: bool = False, absgrad: bool = False):
    """Rasterize `model` from `view`'s camera at its active SH degree (differentiable).

    Args:
        config: rasterizer constants; its colour activation must be the model's.
        background: float32 [3] on the model's device.
        render_inverse_depth: also render the inverse-depth image (`rasterize`).
        absgrad: also compute `means2d_absgrad` in the backward (`rasterize`'s absgrad).

    Returns:
        The rasterizer output (image [H, W, 3], alpha, depth, radii [N], means2d [N, 2],
        inverse_depth [H, W] when asked for, means2d_absgrad [N, 2] or None).
    """
    return rasterize(
        model.means,
        model.quats,
        model.log_scales,
        model.opacity_logits,
        model.sh_coeffs,
        view.viewmat,
        view.K,
        view.width,
        view.height,
        sh_degree=model.active_sh_degree,
        background=background,
        config=config,
        render_inverse_depth=render_inverse_depth,
        absgrad=absgrad,
    )


@dataclass
class ViewScore:
    """Scores of one rendered view `image` (its name): PSNR (dB), SSIM, LPIPS when it was computed
    (else None), depth_error only for a view with a depth map (else None), and the ground-truth
    file's path where the scorer gives it (`gaussian_point_render.py`)."""

    image: str
    psnr: float
    ssim: float
    lpips: Optional[float] = None
    depth_error: Optional[float] = None
    image_path: Optional[str] = None  # the ground-truth file, where the scorer names it


@dataclass
class EvaluationResult:
    """Mean and per-view scores, plus the first few renders for logging.

    lpips is None when LPIPS was not computed; depth_error is the mean over the views that have
    one, None when none has. renders: (name, prediction [H, W, 3], ground truth [H, W, 3],
    depth [H, W], alpha [H, W]), float32 CPU tensors.
    """

    psnr: float
    ssim: float
    per_view: list[ViewScore]
    renders: list[tuple] = field(default_factory=list)
    lpips: Optional[float] = None
    depth_error: Optional[float] = None

    @classmethod
    def of_views(cls, per_view: Sequence[ViewScore], renders: Sequence[tuple] = ()) -> "EvaluationResult":
        """The result whose scores are the means of `per_view` (at least one view; LPIPS when every
        view has it; the depth error over the views that have one)."""
        def mean(values: list) -> Optional[float]:
            return None if any(v is None for v in values) else sum(values) / len(values)

        depth_errors = [s.depth_error for s in per_view if s.depth_error is not None]
        return cls(psnr=mean([s.psnr for s in per_view]), ssim=mean([s.ssim for s in per_view]),
                   per_view=list(per_view), renders=list(renders), lpips=mean([s.lpips for s in per_view]),
                   depth_error=mean(depth_errors) if depth_errors else None)

    def to_json(self) -> dict:
        """{"psnr": x, "ssim": y, "per_view": [{"image": name, "psnr": .., "ssim": ..}, ...]}, with
        "lpips" beside "ssim" (mean and per view) when it was computed, "depth_error" (mean and
        per view) where there is one, and "image_path" per view where it is known."""
        def scores(item) -> dict:
            values = {"psnr": item.psnr, "ssim": item.ssim}
            if item.lpips is not None:
                values["lpips"] = item.lpips
            if item.depth_error is not None:
                values["depth_error"] = item.depth_error
            return values

        def view(score: ViewScore) -> dict:
            path = {} if score.image_path is None else {"image_path": score.image_path}
            return {"image": score.image, **path, **scores(score)}

        return {**scores(self), "per_view": [view(s) for s in self.per_view]}


def write_metrics(path: Path, evaluation: Optional[EvaluationResult], num_gaussians: int, step: Optional[int] = None,
                  train_minutes: Optional[float] = None, inputs: Optional[dict[str, str]] = None) -> dict:
    """Write metrics.json (docs/FORMATS.md "metrics.json"), atomically, in the one layout of the
    trainer and `gaussian_point_render.py`: {"step", "val" (`to_json`, or null without scored
    views), "num_gaussians", "train_minutes"}, step and train_minutes null outside training, plus
    `inputs` (the renderer's {"scene", "poses"} paths) when given.

    Returns:
        The dict written.
    """
    metrics = {
        "step": step,
        "val": None if evaluation is None else evaluation.to_json(),
        "num_gaussians": num_gaussians,
        "train_minutes": train_minutes,
        **(inputs or {}),
    }
    write_text_atomic(path, json.dumps(metrics, indent=2) + "\n")
    return metrics


@torch.no_grad()
def evaluate(
    model: GaussianModel,
    views: Sequence[View],
    config: RasterizerConfig,
    background: torch.Tensor,
    num_renders: int = 0,
    ssim_window_size: int = SSIM_WINDOW_SIZE,
    ssim_sigma: float = SSIM_SIGMA,
    lpips: Optional[LPIPS] = None,
) -> Optional[EvaluationResult]:
    """Render every view over `background` and score it against its image (all pixels), and the
    depth of views with a depth map against it (`depth_supervision.depth_error`).

    Args:
        lpips: also score LPIPS with these weights (on the model's device), or None.

    Returns:
        The scores (means over the views), with the renders of the first `num_renders` views;
        None when `views` is empty.
    """
    if not views:
        return None
    scores, renders = [], []
    for index, view in enumerate(views):
        out = render_model_view(model, view, config, background)
        prediction = out.image.clamp(0.0, 1.0)
        target = view.target(background)
        scores.append(ViewScore(
            view.name, float(psnr(prediction, target)), float(ssim(prediction, target, None, ssim_window_size, ssim_sigma)),
            None if lpips is None else float(lpips(prediction, target)),
            None if view.depth is None else depth_error(view, out.depth, out.alpha),
        ))
        if index < num_renders:
            renders.append((view.name, prediction.cpu(), target.cpu(), out.depth.cpu(), out.alpha.cpu()))
    return EvaluationResult.of_views(scores, renders)


def evaluate_across_ranks(world: World, model: GaussianModel, views: Sequence[View], num_views: int,
                          config: RasterizerConfig, background: torch.Tensor, num_renders: int,
                          ssim_window_size: int, ssim_sigma: float,
                          lpips: Optional[LPIPS] = None) -> Optional[EvaluationResult]:
    """`evaluation.evaluate` of all `num_views` val views, each rank rendering its share.

    Args:
        views: this rank's views, `world.share(all views)`.
        num_views: the number of val views over all ranks.
        num_renders: renders of the first this many views (of all) are kept for logging.
        the rest: as `evaluate`.

    Returns:
        On every rank the scores of all views in their order and their means, the same numbers
        as `evaluate` of all views in one process; the renders on the main rank only. None when
        there is no val view.
    """
    if world.size == 1:
        return evaluate(model, views, config, background, num_renders, ssim_window_size, ssim_sigma, lpips)
    if num_views == 0:
        return None
    # This rank holds views rank, rank + size, ...: those below num_renders are logged.
    local = evaluate(model, views, config, background, len(range(world.rank, num_renders, world.size)),
                     ssim_window_size, ssim_sigma, lpips)
    per_view: list[Any] = [None] * num_views
    for rank, scores in enumerate(world.all_gather([] if local is None else local.per_view)):
        per_view[rank::world.size] = scores
    by_rank = world.gather_to_main([] if local is None else local.renders)
    renders = []
    if by_rank is not None:
        for index in range(min(num_renders, num_views)):
            renders.append(by_rank[index % world.size][index // world.size])
    return EvaluationResult.of_views(per_view, renders)
