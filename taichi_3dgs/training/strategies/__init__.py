"""Densification strategies, one module each, picked by the config's `strategy` key.

`base.Strategy` is the protocol and its call-order contract, `ops` the row operations every
strategy resizes the Gaussians with, `default` the official adaptive density control and `mcmc`
3DGS as MCMC. A new strategy is one module here, one config section (a `TrainConfig` field marked
with `strategy_section(name)`, named in the `strategy` key's choices) and one line in `STRATEGIES`.
"""
from __future__ import annotations

from taichi_3dgs.training.config import TrainConfig, strategy_settings
from taichi_3dgs.training.strategies.base import Strategy
from taichi_3dgs.training.strategies.default import DefaultStrategy
from taichi_3dgs.training.strategies.mcmc import MCMCStrategy

STRATEGIES: dict[str, type] = {
    "default": DefaultStrategy,
    "mcmc": MCMCStrategy,
}


def make_strategy(config: TrainConfig, scene_extent: float) -> Strategy:
    """The strategy `config.strategy` names, built from its config section (`strategy_settings`).

    Args:
        config: the run's config (step counts as the loop counts them).
        scene_extent: world units (`dataset.scene_extent`).

    Raises:
        ValueError: no strategy of that name.
    """
    if config.strategy not in STRATEGIES:
        raise ValueError(f"unknown densification strategy {config.strategy!r}; expected one of "
                         f"{', '.join(map(repr, STRATEGIES))}")
    white = all(c == 1.0 for c in config.background_color)
    return STRATEGIES[config.strategy].for_run(strategy_settings(config), scene_extent, white)
