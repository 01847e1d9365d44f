"""3DGS as Markov Chain Monte Carlo (Kheradmand et al. 2024), following gsplat's `MCMCStrategy`:
`strategy: mcmc`, settings in `mcmc-config`.
"""
from __future__ import annotations

import functools
import math
from typing import Any, Sequence

import torch

from taichi_3dgs.rotations import quaternion_to_rotation_matrix
from taichi_3dgs.scene.model import PARAMETER_NAMES, GaussianModel
from taichi_3dgs.training.config_sections import MCMCConfig
from taichi_3dgs.training.distributed import SINGLE_PROCESS, World
from taichi_3dgs.training.strategies.ops import append_rows, replace_rows


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

    @classmethod
    def for_run(cls, settings: MCMCConfig, scene_extent: float, white_background: bool) -> "MCMCStrategy":
        """The strategy of a run (`Strategy.for_run`); MCMC uses neither the extent nor the background."""
        return cls(settings)

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
