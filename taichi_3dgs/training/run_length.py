"""Step counts that follow the run length (`scale-schedule: true`; after gsplat's `steps_scaler`).

The official schedule is written for 30,000 steps: warm-up 500, densify every 100 until 15,000,
opacity reset every 3,000, SH degree +1 every 1,000. A run shortened to N steps with these counts
densifies to its last step and raises the SH degree late. With `scale-schedule` every step count
marked `schedule=True` on its config field (`config.SCHEDULE_KEYS`: the phases of the run, i.e.
densification warm-up and end, SH band interval, decay lengths, MCMC refinement start and stop,
exposure delay) is multiplied by N / `OFFICIAL_NUM_ITERATIONS` and rounded (a positive count to at
least 1, 0 and null stay), as gsplat's `simple_trainer.py` multiplies its strategy's steps by
`steps_scaler`. Unlike gsplat, the densification, opacity-reset and MCMC refinement intervals stay
as written: they are the steps a Gaussian optimises between two changes of the scene, which a
shorter run does not shorten; scaled too (densifying every 3 steps in a 1,000-step run) they grew
150,000 Gaussians on 100x75 images and lost 5.6 dB on colmap_tumbler (BENCHMARKS.md). Reporting
counts (val, checkpoint and logging intervals) are left as written. Applied to the user's config
before the batch scaling (`batch_scaling.schedule_in_batches`), since both count images.

This module imports no torch; it knows the config only through the field markers.
"""
from __future__ import annotations

from typing import Optional, TypeVar

from taichi_3dgs.training.config_loader import replace_marked

Config = TypeVar("Config")

# The run length the official schedule, and this project's defaults, are written for.
OFFICIAL_NUM_ITERATIONS = 30_000


def scaled_count(count: Optional[int], factor: float) -> Optional[int]:
    """round(count x factor), at least 1 for a positive count; 0 and None stay."""
    if not count:
        return count
    return max(1, round(count * factor))


def schedule_for_run_length(config: Config) -> Config:
    """`config` (a `TrainConfig`) with its schedule scaled to its num-iterations when
    `scale-schedule` is true (module docstring); `config` itself otherwise or at 30,000 steps."""
    if not config.scale_schedule or config.num_iterations == OFFICIAL_NUM_ITERATIONS:
        return config
    factor = config.num_iterations / OFFICIAL_NUM_ITERATIONS
    return replace_marked(config, "schedule", lambda count: scaled_count(count, factor))
