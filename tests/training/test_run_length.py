"""`scale-schedule`: the schedule's step counts follow num-iterations (training/run_length.py,
gsplat's steps_scaler less its intervals), checked key by key against the config's own defaults, and
through the trainer: a 30-step run densifies only with the scaled schedule."""
from __future__ import annotations

import pytest
from test_trainer import demo_config

from taichi_3dgs.data.demo_scene import DemoSceneSpec, make_demo_scene
from taichi_3dgs.training.batch_scaling import schedule_in_batches
from taichi_3dgs.training.config import SCHEDULE_KEYS, STEP_COUNT_KEYS, parse_train_config
from taichi_3dgs.training.run_length import OFFICIAL_NUM_ITERATIONS, schedule_for_run_length
from taichi_3dgs.training.trainer import train


def value(config, key: str):
    for part in key.split("."):
        config = getattr(config, part.replace("-", "_"))
    return config


def test_every_schedule_count_is_scaled_and_reporting_counts_are_not():
    written = parse_train_config({"num-iterations": 2000, "scale-schedule": True}, "run.yaml")
    scaled = schedule_for_run_length(written)
    factor = 2000 / OFFICIAL_NUM_ITERATIONS
    for key in SCHEDULE_KEYS:
        count = value(written, key)
        expected = count if not count else max(1, round(count * factor))
        assert value(scaled, key) == expected, key
    assert value(scaled, "adaptive-controller-config.densify-until-iteration") == 1000
    assert value(scaled, "adaptive-controller-config.num-iterations-warm-up") == 33
    # The intervals between two changes of the scene stay as written.
    assert value(scaled, "adaptive-controller-config.num-iterations-densify") == 100
    assert value(scaled, "adaptive-controller-config.num-iterations-reset-alpha") == 3000
    assert value(scaled, "mcmc-config.refine-every") == 100
    assert value(scaled, "increase-color-max-sh-band-interval") == 67
    for key in set(STEP_COUNT_KEYS) - set(SCHEDULE_KEYS):
        assert value(scaled, key) == value(written, key), key


def test_the_schedule_keys_are_every_step_count_but_the_run_length_and_the_intervals():
    """A new step-count key must be classified: scaled with the run, or an interval (of the scene's
    changes, or of reporting)."""
    assert set(STEP_COUNT_KEYS) - set(SCHEDULE_KEYS) == {
        "num-iterations", "val-interval", "checkpoint-interval", "logging.log-loss-interval",
        "adaptive-controller-config.num-iterations-densify", "adaptive-controller-config.num-iterations-reset-alpha",
        "mcmc-config.refine-every"}


def test_off_or_at_the_official_length_nothing_changes():
    off = parse_train_config({"num-iterations": 2000}, "run.yaml")
    assert schedule_for_run_length(off) is off
    official = parse_train_config({"scale-schedule": True}, "run.yaml")
    assert schedule_for_run_length(official) is official


def test_scaled_counts_stay_positive_and_compose_with_the_batch():
    written = parse_train_config({"num-iterations": 30, "scale-schedule": True, "batch-size": 2,
                                  "adaptive-controller-config": {"num-iterations-warm-up": 0}}, "run.yaml")
    scaled = schedule_for_run_length(written)
    assert scaled.increase_color_max_sh_band_interval == 1  # 1,000 x 0.001 -> at least 1
    assert scaled.adaptive_controller_config.num_iterations_warm_up == 0
    assert scaled.learning_rates.means_max_steps is None
    batched = schedule_in_batches(scaled)
    assert batched.adaptive_controller_config.densify_until_iteration == 8  # 15 images / 2, rounded up
    assert batched.num_iterations == 15


@pytest.mark.parametrize("scale", [True, False])
def test_a_shortened_run_densifies_only_with_the_scaled_schedule(tmp_path, scale):
    scene = make_demo_scene(tmp_path / "scene", DemoSceneSpec(width=32, height=32, num_views=6, num_points=400))
    config = demo_config(scene, tmp_path / "out", **{"num-iterations": 30, "val-interval": 30,
                                                      "checkpoint-interval": 30, "scale-schedule": scale,
                                                      "adaptive-controller-config": {"num-iterations-densify": 5}})
    result = train(config)
    # Official counts: warm-up 500 > 30 steps, nothing densifies. Scaled: warm-up 1 and densification
    # until step 15, every 5 steps as written, so the count moves.
    assert (result.num_gaussians != 400) == scale
