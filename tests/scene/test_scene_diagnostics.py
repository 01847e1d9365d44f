"""`diagnose_scene`: the problems that make a scene render blank, each found at its threshold and
not below it, and nothing reported for a healthy scene."""
import math
from dataclasses import replace

import pytest
import torch
from synthetic_scenes import random_scene

from taichi_3dgs.scene.diagnostics import ABSURD_SCALE_RATIO, diagnose_scene

ALPHA = 1.0 / 255.0
LOGIT_AT_ALPHA = math.log(1.0 / 254.0)  # sigmoid(x) = 1/255 <=> x = log((1/255) / (254/255)) = -5.537


def test_healthy_random_scene_has_no_problem():
    assert diagnose_scene(random_scene(num_gaussians=50), 10.0, ALPHA) == []


def test_empty_scene_is_the_one_problem():
    assert diagnose_scene(random_scene(num_gaussians=0), 10.0, ALPHA) == [
        "the scene has no Gaussians, so every render is the background"]


def test_opacities_all_below_the_alpha_threshold_are_reported_with_the_largest():
    scene = random_scene(num_gaussians=8)
    logits = torch.full((8,), LOGIT_AT_ALPHA - 0.05)
    logits[3] = LOGIT_AT_ALPHA - 0.01
    (problem,) = diagnose_scene(replace(scene, opacity_logits=logits), 10.0, ALPHA)
    assert "every opacity is below the rasterizer's alpha threshold 0.003922" in problem
    expected_largest = 1.0 / (1.0 + math.exp(-(LOGIT_AT_ALPHA - 0.01)))
    assert f"largest sigmoid(opacity_logit) = {expected_largest:.3g})" in problem


def test_one_opacity_above_the_threshold_is_enough():
    scene = random_scene(num_gaussians=8)
    logits = torch.full((8,), -30.0)
    logits[5] = LOGIT_AT_ALPHA + 0.01
    assert diagnose_scene(replace(scene, opacity_logits=logits), 10.0, ALPHA) == []


def test_scales_above_a_million_times_the_extent_are_counted():
    extent = 10.0
    limit = math.log(ABSURD_SCALE_RATIO * extent)  # 16.118
    scene = random_scene(num_gaussians=6)
    log_scales = torch.full((6, 3), -2.0)
    log_scales[1, 2] = limit + 0.01
    log_scales[4, 0] = limit + 30.0
    log_scales[5, 1] = limit - 0.01  # just below: not absurd
    (problem,) = diagnose_scene(replace(scene, log_scales=log_scales), extent, ALPHA)
    assert problem.startswith("2 of 6 Gaussians have a scale above 1e+06 x the scene extent 10 ")
    assert f"largest exp(log_scale) = {math.exp(limit + 30.0):.3g})" in problem


def test_non_finite_values_are_reported_per_tensor_and_left_out_of_the_other_checks():
    scene = random_scene(num_gaussians=5)
    quats, log_scales = scene.quats.clone(), scene.log_scales.clone()
    quats[3, 1] = float("nan")
    log_scales[2, 0] = float("inf")  # would also count as an absurd scale if it were checked
    problems = diagnose_scene(replace(scene, quats=quats, log_scales=log_scales), 10.0, ALPHA)
    assert problems == [
        "quats holds NaN or inf in 1 of 5 Gaussians (first row 3); expected finite numbers",
        "log_scales holds NaN or inf in 1 of 5 Gaussians (first row 2); expected finite numbers",
    ]


@pytest.mark.parametrize("extent, alpha", [(0.0, ALPHA), (float("nan"), ALPHA), (1.0, 0.0), (1.0, 1.0)])
def test_bad_extent_or_threshold_raises(extent, alpha):
    with pytest.raises(ValueError, match="diagnose_scene"):
        diagnose_scene(random_scene(num_gaussians=2), extent, alpha)
