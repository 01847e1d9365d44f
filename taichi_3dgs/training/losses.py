"""The training loss of one view, as named terms, and their sums over a step for the logs.

The 3DGS paper's eq. 7: (1 - lambda) L1 + lambda (1 - SSIM), with the official code's SSIM
(`taichi_3dgs.metrics.ssim`: 11 x 11 Gaussian window, sigma 1.5, zero padding), plus, for a view
with a depth map under `depth-loss`, weight x the inverse-depth L1 (`depth_supervision`; the
official `Ll1depth`). A new term is one entry of `ViewLoss.terms`, its weight in `view_loss`, and
its name in `LOGGED_TERMS` (with its TensorBoard tag in `reporting`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from taichi_3dgs.data.views import View
from taichi_3dgs.metrics import masked_mean, psnr, ssim
from taichi_3dgs.rasterizer import RasterizeOutput
from taichi_3dgs.training.config_sections import LossConfig
from taichi_3dgs.training.depth_supervision import depth_loss
from taichi_3dgs.training.distributed import World

# The per-view values a step logs (batch means): the weighted loss, its terms, and the train PSNR.
# "depth" is 0 for a view without depth supervision.
LOGGED_TERMS = ("loss", "l1", "ssim", "psnr", "depth")


def l1_loss(image: torch.Tensor, target: torch.Tensor, mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Mean absolute error of image vs target [H, W, C] over the pixels where mask [H, W] is true."""
    return masked_mean((image - target).abs(), mask)


@dataclass
class ViewLoss:
    """The loss of one training view.

    Attributes:
        total: scalar tensor, the weighted sum of the terms (differentiable).
        terms: {name: scalar tensor} unweighted: "l1", "ssim" (the SSIM value, not 1 - SSIM) and,
            with depth supervision, "depth" (differentiable).
    """

    total: torch.Tensor
    terms: dict[str, torch.Tensor]


def view_loss(image: torch.Tensor, target: torch.Tensor, view: View, out: RasterizeOutput, config: LossConfig,
              depth_weight: Optional[float]) -> ViewLoss:
    """(1 - lambda) L1 + lambda (1 - SSIM) [+ depth_weight x depth loss] of one view.

    Args:
        image: [H, W, 3] the render as the loss compares it (after exposure compensation).
        target: [H, W, 3] the view's image over the step's background.
        view: the training view (its mask, and its depth map for the depth term).
        out: the render, with `inverse_depth` when `depth_weight` is given.
        config: lambda and the SSIM window.
        depth_weight: the depth term's weight at this step, or None for no depth term.
    """
    l1 = l1_loss(image, target, view.mask)
    ssim_value = ssim(image, target, view.mask, config.ssim_window_size, config.ssim_sigma)
    total = (1.0 - config.lambda_value) * l1 + config.lambda_value * (1.0 - ssim_value)
    terms = {"l1": l1, "ssim": ssim_value}
    depth_value = None if depth_weight is None else depth_loss(view, out.inverse_depth, out.alpha)
    if depth_value is not None:
        total = total + depth_weight * depth_value
        terms["depth"] = depth_value
    return ViewLoss(total, terms)


class LossLog:
    """Sums of the `LOGGED_TERMS` over the views of a step, for the logs (no gradients)."""

    def __init__(self, device: torch.device) -> None:
        self.sums = {name: torch.zeros((), device=device) for name in LOGGED_TERMS}

    @torch.no_grad()
    def add(self, loss: torch.Tensor, view_terms: ViewLoss, image: torch.Tensor, target: torch.Tensor,
            mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Add one view: `loss` (its share of the step's loss), its terms and its PSNR (image
        clamped to [0, 1]); return that PSNR in dB (a scalar tensor)."""
        view_psnr = psnr(image.detach().clamp(0.0, 1.0), target, mask)
        values = {"loss": loss, "psnr": view_psnr, **view_terms.terms}
        for name in LOGGED_TERMS:
            if name in values:
                self.sums[name] += values[name].detach()
        return view_psnr

    def means(self, world: World, batch_size: int) -> dict[str, float]:
        """The sums over every process (`world.sum_`): "loss" as summed (the views' shares add up to
        the step's loss), every other term divided by `batch_size` (in float32)."""
        stacked = torch.stack([self.sums[name] for name in LOGGED_TERMS])
        world.sum_(stacked)
        return dict(zip(LOGGED_TERMS, [float(stacked[0])] + (stacked[1:] / batch_size).tolist()))
