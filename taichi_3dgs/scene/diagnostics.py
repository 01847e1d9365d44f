"""Why a scene would render blank or wrong: the checks the renderer and the trainer warn with.

A `GaussianScene` can pass `GaussianScene.validate()` (shapes, dtypes, finite values) and still be
useless: no Gaussians at all, every Gaussian too transparent for the rasterizer to draw, or scales
so large that a Gaussian is culled or smeared over every view (linear scales stored where log-scales
belong, a diverged training). `diagnose_scene` lists such problems as sentences; the callers decide
whether they are warnings (renderer, viewer) or errors (a trainer whose scene became empty).
"""
from __future__ import annotations

import math

import torch

from taichi_3dgs.scene.gaussians import TENSOR_FIELDS, GaussianScene

ABSURD_SCALE_RATIO = 1e6
"""A Gaussian whose largest standard deviation exp(log_scale) exceeds this many times the scene
extent is reported: no capture holds such a Gaussian, while linear scales stored as log-scales (a
scale of 40 read as e^40 = 2e17) or a diverged optimisation give them."""


def diagnose_scene(scene: GaussianScene, extent: float, alpha_threshold: float) -> list[str]:
    """The problems of `scene` that make its renders blank or meaningless, as sentences.

    Checks, in this order (a problem is reported once, with counts and the worst value):
    1. N = 0: no Gaussians (renders show only the background); nothing else is checked.
    2. Non-finite values (NaN / inf) in any parameter tensor, per tensor with its first row
       (readers refuse them; a diverged training does not). Rows with such values are left out
       of the checks below.
    3. Every opacity sigmoid(opacity_logit) below `alpha_threshold`: the rasterizer skips any
       alpha below it, so nothing is drawn.
    4. Gaussians whose largest exp(log_scale) exceeds `ABSURD_SCALE_RATIO` x `extent`.

    Args:
        scene: the Gaussians (any device; not modified, not validated).
        extent: the scene's size in world units the scales are compared with, > 0 (the trainer's
            camera extent, or the renderer's distance of its cameras from the scene).
        alpha_threshold: the rasterizer's smallest drawn alpha (`RasterizerConfig.alpha_threshold`,
            1/255 as in the official rasterizer).

    Returns:
        The problems found, each a sentence without the file name (callers prefix it); empty when
        the scene looks renderable.

    Raises:
        ValueError: `extent` not a positive finite number, `alpha_threshold` outside (0, 1).
    """
    if not (math.isfinite(extent) and extent > 0):
        raise ValueError(f"diagnose_scene: extent must be a positive number of world units, got {extent}")
    if not 0.0 < alpha_threshold < 1.0:
        raise ValueError(f"diagnose_scene: alpha_threshold must be in (0, 1), got {alpha_threshold}")
    n = scene.num_gaussians
    if n == 0:
        return ["the scene has no Gaussians, so every render is the background"]
    problems = []
    finite = torch.ones(n, dtype=torch.bool, device=scene.means.device)
    for name in TENSOR_FIELDS:
        rows_finite = torch.isfinite(getattr(scene, name).detach().reshape(n, -1)).all(dim=1)
        if not bool(rows_finite.all()):
            bad = (~rows_finite).nonzero()[:, 0]
            problems.append(f"{name} holds NaN or inf in {len(bad)} of {n} Gaussians (first row "
                            f"{int(bad[0])}); expected finite numbers")
            finite &= rows_finite
    if not bool(finite.any()):
        return problems
    logits = scene.opacity_logits.detach()[finite]
    # sigmoid(x) < t  <=>  x < logit(t): compare logits, whose sigmoid rounds to 0 for x < -104.
    if bool((logits < math.log(alpha_threshold / (1.0 - alpha_threshold))).all()):
        largest = float(torch.sigmoid(logits.max().double()))
        problems.append(f"every opacity is below the rasterizer's alpha threshold "
                        f"{alpha_threshold:.4g} (largest sigmoid(opacity_logit) = {largest:.3g}), so "
                        f"nothing is drawn; expected opacity logits (opacity = sigmoid(logit))")
    largest_log_scale = scene.log_scales.detach()[finite].max(dim=1).values
    # Compared in log space: exp of a log-scale of 100 already overflows float32.
    absurd = largest_log_scale > math.log(ABSURD_SCALE_RATIO * extent)
    if bool(absurd.any()):
        worst = float(largest_log_scale.max().double().exp())  # inf past float64's range
        problems.append(f"{int(absurd.sum())} of {n} Gaussians have a scale above "
                        f"{ABSURD_SCALE_RATIO:g} x the scene extent {extent:.3g} (largest "
                        f"exp(log_scale) = {worst:.3g}), which render as nothing or as a smear over "
                        f"every view; expected log-scales (natural log of the standard deviation in "
                        f"world units)")
    return problems
