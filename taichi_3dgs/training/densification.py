"""Densification strategies: objects the trainer calls around each optimisation step.

The rasterizer knows nothing about them (the design of gsplat's `Strategy`). Per step of a batch
of B views the trainer calls, in this order:

    loss = mean over the B views of photometric + strategy.regularization_loss(model)
    loss.backward()                                                    # view by view
    strategy.step_post_backward(step, renders, batch_size, world)      # gather statistics
    optimizer.step()
    refined = strategy.step_post_optimizer(step, model, optimizer, means_lr, generator)

`generator` is the run's CPU `torch.Generator`: random numbers are drawn on the CPU and moved to
the parameters' device, so a run is reproducible from its seed on any device. In data-parallel
training (`distributed.World`) every process holds the same model and generator state, and
`step_post_backward` sums each step's statistics over the processes, so every decision below
comes out the same in every process.

`DefaultStrategy` is the official adaptive density control (Kerbl et al. 2023, sec. 5.2;
graphdeco-inria `train.py` and `GaussianModel.densify_and_prune`). `MCMCStrategy` is 3DGS as
Markov Chain Monte Carlo (Kheradmand et al. 2024), following gsplat's `MCMCStrategy`.
Steps count from 1, as the official `iteration`.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Optional, Protocol, Sequence

import torch

from taichi_3dgs.quaternions import quaternion_to_rotation_matrix
from taichi_3dgs.scene.model import PARAMETER_NAMES, GaussianModel
from taichi_3dgs.training.config import DensificationConfig, MCMCConfig
from taichi_3dgs.training.distributed import SINGLE_PROCESS, World
from taichi_3dgs.training.optimization import append_rows, keep_rows, replace_rows


class Strategy(Protocol):
    """What the trainer calls; see the module docstring for the order.

    Attributes:
        absgrad: the renders given to `step_post_backward` must carry `means2d_absgrad`
            (`rasterize(absgrad=True)`).
    """

    absgrad: bool

    def regularization_loss(self, model: GaussianModel) -> torch.Tensor | float:
        """Extra loss term added to the photometric loss (0.0 for none)."""

    def step_post_backward(self, step: int, renders: Sequence[tuple[Any, int, int]], batch_size: int = 1,
                           world: World = SINGLE_PROCESS) -> None:
        """Gather statistics from this process's renders of the step, (out, width, height) each
        (after `loss.backward()`); the loss was the mean over `batch_size` views in all processes."""

    def step_post_optimizer(
        self,
        step: int,
        model: GaussianModel,
        optimizer: torch.optim.Optimizer,
        means_lr: float,
        generator: torch.Generator,
    ) -> bool:
        """Change the Gaussians (and their Adam state) after the optimizer step; True if refined."""

    def state_dict(self) -> dict[str, Any]:
        """Running state, for checkpoints."""

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Restore `state_dict()`'s output onto `device`."""


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


@functools.lru_cache(maxsize=4)
def _relocation_coefficients(max_ratio: int) -> torch.Tensor:
    """[max_ratio, max_ratio] f64: row N-1 holds the coefficients of o'^(k+1), k = 0..N-1, in eq. 9.

    sum_{i=k+1..N} C(i-1, k) = C(N, k+1) (hockey-stick identity), so the coefficient is
    C(N, k+1) (-1)^k / sqrt(k+1).
    """
    coeff = torch.zeros(max_ratio, max_ratio, dtype=torch.float64)
    for big_n in range(1, max_ratio + 1):
        for k in range(big_n):
            coeff[big_n - 1, k] = math.comb(big_n, k + 1) * (-1) ** k / math.sqrt(k + 1)
    return coeff


def relocation_opacity_and_scale(
    opacities: torch.Tensor, scales: torch.Tensor, ratios: torch.Tensor, max_ratio: int = 51
) -> tuple[torch.Tensor, torch.Tensor]:
    """Opacity and scales of each of `ratio` copies that replace one Gaussian (MCMC paper, eq. 9).

    With N = ratio (clamped to [1, max_ratio] as gsplat): o' = 1 - (1 - o)^(1/N) and
    s' = o / (sum_{i=1..N} sum_{k=0..i-1} C(i-1, k) (-1)^k o'^(k+1) / sqrt(k+1)) * s, so that the
    N copies composite like the original Gaussian.

    Args:
        opacities: [M] in (0, 1). scales: [M, 3] (not log). ratios: [M] int, copies per Gaussian.

    Returns:
        new opacities [M] and new scales [M, 3], float32.
    """
    n = ratios.clamp(1, max_ratio).long()
    o = opacities.double()
    new_o = 1.0 - torch.pow(1.0 - o, 1.0 / n.double())
    coeff = _relocation_coefficients(max_ratio).to(o.device)[n - 1]  # [M, max_ratio]
    powers = new_o[:, None] ** torch.arange(1, max_ratio + 1, dtype=torch.float64, device=o.device)
    denominator = (coeff * powers).sum(dim=1)
    new_scales = (o / denominator)[:, None] * scales.double()
    return new_o.float(), new_scales.float()


def _sample_by_weight(weights: torch.Tensor, num: int, generator: torch.Generator) -> torch.Tensor:
    """num indices into weights [M] drawn with replacement, P(i) proportional to weights[i].

    Drawn on the CPU with the run's CPU generator (reproducible on any device), returned on the
    weights' device.
    """
    return torch.multinomial(weights.detach().cpu(), num, replacement=True, generator=generator).to(weights.device)


class MCMCStrategy:
    """3DGS as MCMC (Kheradmand et al. 2024), as gsplat's `MCMCStrategy`.

    Every `refine-every` steps strictly between `refine-start-iteration` and
    `refine-stop-iteration`: dead Gaussians (opacity <= `min-opacity`) are moved onto live ones
    sampled with probability proportional to opacity, the sampled Gaussian and its copies sharing
    its opacity and scale by `relocation_opacity_and_scale`; then `growth-rate` x N new Gaussians
    are added the same way, up to `cap-max`. At every step, the means get noise
    N(0, Sigma) x sigmoid(100 (1 - opacity - 0.995)) x means_lr x `noise-lr` (paper eq. 10-11).
    The loss carries L1 regularisers on opacities and scales. Adam moments of relocated and new
    Gaussians are zero (gsplat zeroes the sampled rows; the dead rows' old moments are also
    dropped here, since they belonged to another place).
    """

    absgrad = False  # no gradient statistics

    def __init__(self, config: MCMCConfig):
        self.config = config

    def regularization_loss(self, model: GaussianModel) -> torch.Tensor:
        """opacity-reg x mean(opacity) + scale-reg x mean(scale) (gsplat `simple_trainer`)."""
        return (self.config.opacity_reg * torch.sigmoid(model.opacity_logits).mean()
                + self.config.scale_reg * torch.exp(model.log_scales).mean())

    def step_post_backward(self, step: int, renders: Sequence[tuple[Any, int, int]], batch_size: int = 1,
                           world: World = SINGLE_PROCESS) -> None:
        """MCMC needs no gradient statistics."""

    @torch.no_grad()
    def step_post_optimizer(
        self,
        step: int,
        model: GaussianModel,
        optimizer: torch.optim.Optimizer,
        means_lr: float,
        generator: torch.Generator,
    ) -> bool:
        """Relocate and grow on schedule, then add position noise; True if relocated/grown."""
        cfg = self.config
        refined = False
        if cfg.refine_start_iteration < step < cfg.refine_stop_iteration and step % cfg.refine_every == 0:
            self.relocate_dead(model, optimizer, generator)
            self.add_new(model, optimizer, generator)
            refined = True
        self.inject_noise(model, means_lr, generator)
        return refined

    def _copies(self, model: GaussianModel, sampled: torch.Tensor) -> dict[str, torch.Tensor]:
        """New opacity/scale rows for sampled Gaussians (each counted once per time it was drawn)."""
        counts = torch.bincount(sampled, minlength=model.num_gaussians)
        opacity, scales = relocation_opacity_and_scale(
            torch.sigmoid(model.opacity_logits[sampled]), torch.exp(model.log_scales[sampled]), counts[sampled] + 1
        )
        opacity = opacity.clamp(min=self.config.min_opacity, max=1.0 - torch.finfo(torch.float32).eps)
        return {"opacity_logits": torch.logit(opacity), "log_scales": torch.log(scales)}

    @torch.no_grad()
    def relocate_dead(self, model: GaussianModel, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> int:
        """Move dead Gaussians onto sampled live ones; return how many moved."""
        opacities = torch.sigmoid(model.opacity_logits)
        dead = opacities <= self.config.min_opacity
        dead_idx = dead.nonzero()[:, 0]
        alive_idx = (~dead).nonzero()[:, 0]
        if len(dead_idx) == 0 or len(alive_idx) == 0:
            return 0
        sampled = alive_idx[_sample_by_weight(opacities[alive_idx], len(dead_idx), generator)]
        replace_rows(model, optimizer, sampled, self._copies(model, sampled))
        params = model.parameter_dict()
        replace_rows(model, optimizer, dead_idx, {name: params[name][sampled] for name in PARAMETER_NAMES})
        return len(dead_idx)

    @torch.no_grad()
    def add_new(self, model: GaussianModel, optimizer: torch.optim.Optimizer, generator: torch.Generator) -> int:
        """Add growth-rate x N Gaussians (capped) as copies of opacity-sampled ones; return how many."""
        n = model.num_gaussians
        num_new = max(0, min(self.config.cap_max, int((1.0 + self.config.growth_rate) * n)) - n)
        if num_new == 0:
            return 0
        sampled = _sample_by_weight(torch.sigmoid(model.opacity_logits), num_new, generator)
        replace_rows(model, optimizer, sampled, self._copies(model, sampled))
        params = model.parameter_dict()
        append_rows(model, optimizer, {name: params[name][sampled] for name in PARAMETER_NAMES})
        return num_new

    @torch.no_grad()
    def inject_noise(self, model: GaussianModel, means_lr: float, generator: torch.Generator) -> None:
        """means += Sigma z x sigmoid(100 (1 - opacity - 0.995)) x means_lr x noise-lr, z ~ N(0, I)."""
        opacities = torch.sigmoid(model.opacity_logits)
        rotations = quaternion_to_rotation_matrix(model.quats)
        scales = torch.exp(model.log_scales)
        covariances = rotations @ torch.diag_embed(scales**2) @ rotations.transpose(1, 2)
        gate = torch.sigmoid(100.0 * ((1.0 - opacities) - 0.995))
        z = torch.randn(model.means.shape, generator=generator).to(model.means.device)
        noise = z * gate[:, None] * (means_lr * self.config.noise_lr)
        model.means.add_(torch.bmm(covariances, noise[..., None])[..., 0])

    def state_dict(self) -> dict[str, Any]:
        """MCMC keeps no running state: {}."""
        return {}

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str = "cpu") -> None:
        """Nothing to restore."""


def make_strategy(name: str, densification: DensificationConfig, mcmc: MCMCConfig, scene_extent: float,
                  white_background: bool) -> DefaultStrategy | MCMCStrategy:
    """The strategy called `name` ("default" or "mcmc").

    Raises:
        ValueError: unknown name.
    """
    if name == "default":
        return DefaultStrategy(densification, scene_extent, white_background)
    if name == "mcmc":
        return MCMCStrategy(mcmc)
    raise ValueError(f"unknown densification strategy {name!r}; expected 'default' or 'mcmc'")
