"""Adam setup and the means' learning-rate schedule (official training_setup / get_expon_lr_func)."""
from __future__ import annotations

import pytest
import torch

from taichi_3dgs.scene.model import GaussianModel
from taichi_3dgs.training.config import LearningRateConfig
from taichi_3dgs.training.optimization import make_optimizer, means_learning_rate, param_group


def test_means_learning_rate_decays_log_linearly_over_the_run():
    rates = LearningRateConfig()
    assert means_learning_rate(0, rates, 2.0, 1000) == pytest.approx(1.6e-4 * 2.0)
    assert means_learning_rate(500, rates, 2.0, 1000) == pytest.approx(1.6e-5 * 2.0)
    assert means_learning_rate(1000, rates, 2.0, 1000) == pytest.approx(1.6e-6 * 2.0)


def test_optimizer_uses_the_official_rates_per_parameter():
    n = 3
    model = GaussianModel(torch.zeros(n, 3), torch.zeros(n, 4), torch.zeros(n, 3), torch.zeros(n), torch.zeros(n, 16, 3))
    optimizer = make_optimizer(model, LearningRateConfig(), scene_extent=4.0)
    expected = {"means": 1.6e-4 * 4.0, "sh_dc": 2.5e-3, "sh_rest": 2.5e-3 / 20, "opacity_logits": 5e-2,
                "log_scales": 5e-3, "quats": 1e-3}
    for name, lr in expected.items():
        group = param_group(optimizer, name)
        assert group["lr"] == pytest.approx(lr), name
        assert group["params"][0] is getattr(model, name)
        assert group["eps"] == 1e-15
