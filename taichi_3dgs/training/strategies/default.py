"""The official adaptive density control (Kerbl et al. 2023, sec. 5.2; graphdeco-inria `train.py`
and `GaussianModel.densify_and_prune`): `strategy: default`, settings in `adaptive-controller-config`.
"""
from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import torch

from taichi_3dgs.rotations import quaternion_to_rotation_matrix
from taichi_3dgs.scene.model import PARAMETER_NAMES, GaussianModel
from taichi_3dgs.training.config_sections import DensificationConfig
from taichi_3dgs.training.distributed import SINGLE_PROCESS, World
from taichi_3dgs.training.strategies.ops import append_rows, keep_rows, replace_rows


class DefaultStrategy:
    """Official adaptive density control: clone, split, prune and opacity reset.

    Statistics, gathered at every step before `densify-until-iteration`, for each view and each
    Gaussian visible in it (radius > 0): the norm of its view-space gradient, i.e. the gradient
    w.r.t. its 2D mean in pixels times (W/2, H/2) (the gradient w.r.t. NDC coordinates, as the
    official rasterizer's `dL_dmean2D`), summed and counted; and its largest screen radius. With B
    views per step the loss is their mean, so each view's gradient is multiplied back by B (gsplat
    `DefaultStrategy._update_state`: x n_cameras) and compares with the same threshold. With
    `absgrad` the gradient is replaced by the sum over pixels of the absolute per-pixel gradients
    (`RasterizeOutput.means2d_absgrad`; AbsGS, Ye et al. 2024, as gsplat's `absgrad`) and
    the threshold by `absgrad-threshold`.

    Every `num-iterations-densify` steps after `num-iterations-warm-up` (and before
    `densify-until-iteration`): Gaussians whose mean gradient norm is >= the threshold are cloned
    when their largest scale is <= percent-dense x extent, else split into `num-split-samples`
    children sampled from the Gaussian, with scales divided by phi (official: 0.8 x 2 = 1.6).
    Then Gaussians with opacity < `transparent-opacity-threshold` are pruned, and after the first
    opacity reset also those whose screen radius exceeded `max-screen-radius` px or whose largest
    scale exceeds `max-world-size-ratio` x extent. The statistics restart from zero.
    Every `num-iterations-reset-alpha` steps (and at the end of the warm-up on a white background,
    as the official code) opacities are set to min(opacity, `reset-opacity-value`).
    """

    def __init__(self, config: DensificationConfig, scene_extent: float, white_background: bool = False):
        self.config = config
        self.absgrad = config.absgrad
        self.scene_extent = scene_extent
        self.white_background = white_background
        self.grad_norm_sum: Optional[torch.Tensor] = None  # [N] f32
        self.visible_count: Optional[torch.Tensor] = None  # [N] f32
        self.max_radii: Optional[torch.Tensor] = None  # [N] f32, pixels
        self.last_counts: dict[str, int] = {}  # of the last densify_and_prune, for logs

    @classmethod
    def for_run(cls, settings: DensificationConfig, scene_extent: float, white_background: bool) -> "DefaultStrategy":
        """The strategy of a run (`Strategy.for_run`)."""
        return cls(settings, scene_extent, white_background)

    def _reset_statistics(self, n: int, device: torch.device) -> None:
        self.grad_norm_sum = torch.zeros(n, device=device)
        self.visible_count = torch.zeros(n, device=device)
        self.max_radii = torch.zeros(n, device=device)

    def regularization_loss(self, model: GaussianModel) -> float:
        """No regulariser: 0.0."""
        return 0.0

    @torch.no_grad()
    def step_post_backward(self, step: int, renders: Sequence[tuple[Any, int, int]], batch_size: int = 1,
                           world: World = SINGLE_PROCESS) -> None:
        """Accumulate view-space gradient norms and max radii of one step.

        Args:
            renders: this process's renders of the step, (out, width px, height px) each, with
                out.means2d.grad [N, 2] (after backward; with absgrad out.means2d_absgrad [N, 2]
                instead) and out.radii [N] int.
            batch_size: views in the step over all processes (the loss is their mean).
            world: the processes; the step's sums and maxima are reduced over them.

        Raises:
            ValueError: with absgrad, a render without means2d_absgrad (not rendered with
                `rasterize(absgrad=True)`).
        """
        if step >= self.config.densify_until_iteration:
            return
        out = renders[0][0]
        n, device = out.radii.shape[0], out.radii.device
        if self.grad_norm_sum is None or self.grad_norm_sum.shape[0] != n:
            self._reset_statistics(n, device)
        # This step's sums first, reduced over the processes, then accumulated. The running maxima
        # are the same in every process, so they take this step's radii and are reduced in place.
        grad_norm_sum, visible_count = (torch.zeros(n, device=device) for _ in range(2))
        for out, width, height in renders:
            if self.absgrad:
                grad = out.means2d_absgrad
                if grad is None:
                    raise ValueError("densification with absgrad: the render has no means2d_absgrad; render with "
                                     "rasterize(..., absgrad=True)")
            else:
                grad = out.means2d.grad
            if grad is None:  # nothing visible: the masked updates would add nothing
                continue
            visible = out.radii > 0
            scale = torch.tensor([width / 2.0 * batch_size, height / 2.0 * batch_size], device=grad.device)
            grad_norm = (grad * scale).norm(dim=-1)
            # Masked by `where`, not by boolean indexing, which syncs with the host on CUDA every step.
            grad_norm_sum += torch.where(visible, grad_norm, 0.0)
            visible_count += visible.float()
            self.max_radii = torch.maximum(self.max_radii, torch.where(visible, out.radii.float(), 0.0))
        world.sum_(grad_norm_sum, visible_count)
        world.max_(self.max_radii)
        self.grad_norm_sum += grad_norm_sum
        self.visible_count += visible_count

    @torch.no_grad()
    def step_post_optimizer(
        self,
        step: int,
        model: GaussianModel,
        optimizer: torch.optim.Optimizer,
        means_lr: float,
        generator: torch.Generator,
    ) -> bool:
        """Densify/prune and reset opacities on the official schedule; True if densified."""
        cfg = self.config
        if step >= cfg.densify_until_iteration:
            return False
        refined = False
        if step > cfg.num_iterations_warm_up and step % cfg.num_iterations_densify == 0:
            if self.grad_norm_sum is None or self.grad_norm_sum.shape[0] != model.num_gaussians:
                self._reset_statistics(model.num_gaussians, model.means.device)
            self.densify_and_prune(model, optimizer, generator, prune_large=step > cfg.num_iterations_reset_alpha)
            refined = True
        if step % cfg.num_iterations_reset_alpha == 0 or (
            self.white_background and step == cfg.num_iterations_warm_up
        ):
            self.reset_opacity(model, optimizer)
        return refined

    @torch.no_grad()
    def densify_and_prune(
        self,
        model: GaussianModel,
        optimizer: torch.optim.Optimizer,
        generator: torch.Generator,
        prune_large: bool,
    ) -> None:
        """One clone + split + prune pass (official `densify_and_prune`); statistics restart at zero."""
        cfg = self.config
        n = model.num_gaussians
        grads = torch.nan_to_num(self.grad_norm_sum / self.visible_count, nan=0.0)
        max_scale = torch.exp(model.log_scales).max(dim=1).values
        threshold = (cfg.absgrad_threshold if self.absgrad
                     else cfg.densification_view_space_position_gradients_threshold)
        large_grad = grads >= threshold
        small = max_scale <= cfg.percent_dense * self.scene_extent
        clone = large_grad & small
        split = large_grad & ~small

        params = model.parameter_dict()
        cloned = {name: params[name][clone] for name in PARAMETER_NAMES}
        k = cfg.num_split_samples
        split_rows = {name: params[name][split].repeat(k, *([1] * (params[name].dim() - 1))) for name in PARAMETER_NAMES}
        stds = torch.exp(split_rows["log_scales"])
        samples = torch.randn(stds.shape, generator=generator).to(stds.device) * stds
        rotations = quaternion_to_rotation_matrix(split_rows["quats"])
        split_rows["means"] = torch.bmm(rotations, samples[..., None])[..., 0] + split_rows["means"]
        split_rows["log_scales"] = split_rows["log_scales"] - math.log(cfg.gaussian_split_factor_phi)
        new_rows = {name: torch.cat([cloned[name], split_rows[name]]) for name in PARAMETER_NAMES}
        num_new = new_rows["means"].shape[0]
        append_rows(model, optimizer, new_rows)

        zeros = torch.zeros(num_new, dtype=torch.bool, device=split.device)
        prune = torch.cat([split, zeros])
        prune |= torch.sigmoid(model.opacity_logits) < cfg.transparent_opacity_threshold
        if prune_large:
            radii = torch.cat([self.max_radii, torch.zeros(num_new, device=self.max_radii.device)])
            prune |= radii > cfg.max_screen_radius
            prune |= torch.exp(model.log_scales).max(dim=1).values > cfg.max_world_size_ratio * self.scene_extent
        keep_rows(model, optimizer, ~prune)
        self._reset_statistics(model.num_gaussians, model.means.device)
        self.last_counts = {"cloned": int(clone.sum()), "split": int(split.sum()), "pruned": int(prune.sum()), "before": n}

    @torch.no_grad()
    def reset_opacity(self, model: GaussianModel, optimizer: torch.optim.Optimizer) -> None:
        """Opacities := min(opacity, reset value), Adam moments of the opacities zeroed (official)."""
        ceiling = torch.tensor(self.config.reset_opacity_value, device=model.opacity_logits.device)
        logits = torch.minimum(model.opacity_logits, torch.logit(ceiling))
        replace_rows(model, optimizer, slice(None), {"opacity_logits": logits})

    def state_dict(self) -> dict[str, Any]:
        """The gradient statistics (CPU tensors, or None before the first step)."""
        pack = lambda t: None if t is None else t.detach().cpu().clone()  # noqa: E731
        return {"grad_norm_sum": pack(self.grad_norm_sum), "visible_count": pack(self.visible_count),
                "max_radii": pack(self.max_radii)}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Restore `state_dict()` onto `device`."""
        unpack = lambda t: None if t is None else t.to(device)  # noqa: E731
        self.grad_norm_sum = unpack(state["grad_norm_sum"])
        self.visible_count = unpack(state["visible_count"])
        self.max_radii = unpack(state["max_radii"])
