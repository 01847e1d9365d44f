"""Sparse Adam (`optimizer: sparse-adam`): an Adam step of the visible Gaussians only."""
from __future__ import annotations

import pytest
import torch
from interruption import press_ctrl_c_at_render
from test_trainer import demo_config, demo_scene  # noqa: F401 (demo_scene is a fixture)

import taichi_3dgs.training.run_setup as run_setup_module
import taichi_3dgs.training.trainer as trainer_module
from taichi_3dgs.scene.model import PARAMETER_NAMES, GaussianModel
from taichi_3dgs.training.batch_scaling import adam_betas, adam_eps
from taichi_3dgs.training.checkpoint import latest_checkpoint, load_checkpoint
from taichi_3dgs.training.config import LearningRateConfig
from taichi_3dgs.training.optimization import make_optimizer, param_group, set_learning_rate
from taichi_3dgs.training.strategies.ops import append_rows, keep_rows
from taichi_3dgs.training.sparse_adam import SparseGaussianAdam
from taichi_3dgs.training.trainer import train

N = 50


def random_model(seed: int = 0, n: int = N) -> GaussianModel:
    g = torch.Generator().manual_seed(seed)
    return GaussianModel(torch.randn(n, 3, generator=g), torch.randn(n, 4, generator=g),
                         torch.randn(n, 3, generator=g), torch.randn(n, generator=g),
                         torch.randn(n, 16, 3, generator=g))


def set_random_gradients(models, generator: torch.Generator) -> None:
    """The same random gradient, of a different magnitude per parameter, on every model."""
    for scale, name in zip((1e-3, 1e-2, 1.0, 10.0, 0.1, 1e-4), PARAMETER_NAMES):
        grad = torch.randn(getattr(models[0], name).shape, generator=generator) * scale
        for model in models:
            getattr(model, name).grad = grad.clone()


def moments(optimizer: torch.optim.Optimizer, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    state = optimizer.state[param_group(optimizer, name)["params"][0]]
    return state["exp_avg"], state["exp_avg_sq"]


def test_with_every_gaussian_visible_it_is_torch_adam():
    """Several steps with the trainer's groups, batch-scaled eps and betas (B = 4) and a changing
    means rate: the same parameters and moments as torch.optim.Adam."""
    dense_model, sparse_model = random_model(), random_model()
    dense = make_optimizer(dense_model, LearningRateConfig(), 3.0, batch_size=4)
    sparse = make_optimizer(sparse_model, LearningRateConfig(), 3.0, batch_size=4, kind="sparse-adam")
    assert type(dense) is torch.optim.Adam and isinstance(sparse, SparseGaussianAdam)
    generator = torch.Generator().manual_seed(1)
    everything = torch.ones(N, dtype=torch.bool)
    for step in range(1, 7):
        for optimizer in (dense, sparse):
            set_learning_rate(optimizer, "means", 1e-3 / step)
        set_random_gradients([dense_model, sparse_model], generator)
        dense.step()
        sparse.step(everything)
    for name in PARAMETER_NAMES:
        torch.testing.assert_close(getattr(sparse_model, name), getattr(dense_model, name), rtol=1e-6, atol=1e-9)
        for got, expected in zip(moments(sparse, name), moments(dense, name)):
            torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-12)
    assert sparse.state_dict()["state"][0]["step"] == dense.state_dict()["state"][0]["step"] == 6


def test_invisible_gaussians_keep_parameters_and_moments_bit_for_bit():
    """Random visibility per step, gradients on every row: rows not visible are untouched; visible
    rows follow Adam with the step counted over all steps (float64 reference of Kingma & Ba's
    Algorithm 1)."""
    model = random_model()
    lr, eps, (beta1, beta2) = 0.05, adam_eps(1e-8, 2), adam_betas(2)
    optimizer = SparseGaussianAdam([{"params": [model.sh_rest], "name": "sh_rest"}], lr=lr, eps=eps,
                                   betas=(beta1, beta2))
    param = model.sh_rest
    reference = param.detach().double().clone()
    m_ref, v_ref = torch.zeros_like(reference), torch.zeros_like(reference)
    generator = torch.Generator().manual_seed(2)
    momentum_left_behind = 0
    for t in range(1, 8):
        visible = torch.rand(N, generator=generator) < 0.4
        param.grad = torch.randn(param.shape, generator=generator)
        before = [param.detach().clone(), *(s.clone() for s in moments(optimizer, "sh_rest"))] if t > 1 else None
        optimizer.step(visible)
        if before is not None:
            for got, old in zip([param.detach(), *moments(optimizer, "sh_rest")], before):
                assert torch.equal(got[~visible], old[~visible])
            # Dense Adam would have moved these rows with their first moment.
            momentum_left_behind += int((before[1][~visible] != 0).any(dim=(1, 2)).sum())
        g = param.grad.double()[visible]
        m_ref[visible] = beta1 * m_ref[visible] + (1 - beta1) * g
        v_ref[visible] = beta2 * v_ref[visible] + (1 - beta2) * g * g
        reference[visible] -= (lr / (1 - beta1 ** t) * m_ref[visible]
                               / ((v_ref[visible] / (1 - beta2 ** t)).sqrt() + eps))
        torch.testing.assert_close(param.detach().double(), reference, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(moments(optimizer, "sh_rest")[0].double(), m_ref, rtol=1e-5, atol=1e-7)
    assert momentum_left_behind > 0
    assert float(optimizer.state[param]["step"]) == 7


def test_densification_row_surgery_carries_the_moments_of_kept_rows():
    model = random_model()
    optimizer = make_optimizer(model, LearningRateConfig(), 1.0, kind="sparse-adam")
    set_random_gradients([model], torch.Generator().manual_seed(3))
    optimizer.step(torch.ones(N, dtype=torch.bool))
    exp_avg = moments(optimizer, "means")[0].clone()
    keep = torch.arange(N) % 3 != 0
    keep_rows(model, optimizer, keep)
    append_rows(model, optimizer, {name: getattr(model, name).detach()[:4] for name in PARAMETER_NAMES})
    n = model.num_gaussians
    assert torch.equal(moments(optimizer, "means")[0], torch.cat([exp_avg[keep], torch.zeros(4, 3)]))
    # A step of the new rows' count; the invisible appended rows stay as appended.
    set_random_gradients([model], torch.Generator().manual_seed(4))
    appended = model.means.detach()[-4:].clone()
    visible = torch.arange(n) < n - 4
    optimizer.step(visible)
    assert torch.equal(model.means.detach()[-4:], appended)
    assert not moments(optimizer, "means")[0][-4:].any()


def test_visibility_must_be_one_bool_per_gaussian():
    model = random_model()
    optimizer = make_optimizer(model, LearningRateConfig(), 1.0, kind="sparse-adam")
    set_random_gradients([model], torch.Generator().manual_seed(5))
    with pytest.raises(ValueError, match=r"visibility has 49 entries but param group 'means' has 50 rows"):
        optimizer.step(torch.ones(N - 1, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"visibility must be a bool \[N\] tensor, got torch.int32"):
        optimizer.step(torch.ones(N, dtype=torch.int32))


def test_training_steps_only_the_gaussians_each_step_renders(demo_scene, tmp_path, monkeypatch):  # noqa: F811
    """Two training steps on the demo scene: the Gaussians the second view does not see keep their
    parameters and moments of step 1, including some the first view saw (whose first moment
    dense Adam would keep applying)."""
    seen = {"radii": [], "optimizer": None}
    real_make, real_render = run_setup_module.make_optimizer, trainer_module.render_model_view

    def make_and_keep(*args, **kwargs):
        seen["optimizer"] = real_make(*args, **kwargs)
        return seen["optimizer"]

    def render_and_record(model, *args, **kwargs):
        if len(seen["radii"]) == 1:  # after step 1's Adam step
            optimizer = seen["optimizer"]
            seen["after_step_1"] = {name: (p.detach().clone(), *(m.clone() for m in moments(optimizer, name)))
                                    for name, p in model.parameter_dict().items()}
        out = real_render(model, *args, **kwargs)
        seen["radii"].append(out.radii.clone())
        seen["model"] = model
        return out

    monkeypatch.setattr(run_setup_module, "make_optimizer", make_and_keep)
    monkeypatch.setattr(trainer_module, "render_model_view", render_and_record)
    train(demo_config(demo_scene, tmp_path / "out", optimizer="sparse-adam",
                      **{"num-iterations": 2, "val-dataset-json-path": None}))
    first, second = (radii > 0 for radii in seen["radii"])
    hidden = ~second
    assert 0 < int(hidden.sum()) < len(hidden) // 4 and int((first & hidden).sum()) > 0
    optimizer, model = seen["optimizer"], seen["model"]
    for name, p in model.parameter_dict().items():
        after = (p.detach(), *moments(optimizer, name))
        for now, then in zip(after, seen["after_step_1"][name]):
            assert torch.equal(now[hidden], then[hidden]), name
        # What dense Adam would have moved: first moments left from step 1 on hidden rows.
        if name == "means":
            assert seen["after_step_1"][name][1][first & hidden].abs().sum() > 0
            assert not torch.equal(p.detach()[second], seen["after_step_1"][name][0][second])


def test_a_sparse_adam_run_stopped_and_resumed_ends_as_an_uninterrupted_one(demo_scene, tmp_path,  # noqa: F811
                                                                            monkeypatch):
    """The checkpoint holds sparse Adam's moments and step count: a run stopped by Ctrl-C in step 5
    and resumed ends with the uninterrupted run's parameters, bit for bit."""
    settings = {"optimizer": "sparse-adam", "num-iterations": 10, "val-dataset-json-path": None}
    train(demo_config(demo_scene, tmp_path / "a", **settings))
    config = demo_config(demo_scene, tmp_path / "b", **settings)
    press_ctrl_c_at_render(monkeypatch, 5)
    assert train(config).step == 5
    monkeypatch.undo()
    state = load_checkpoint(latest_checkpoint(tmp_path / "b"), "cpu")["optimizer"]["state"]
    assert {float(s["step"]) for s in state.values()} == {5.0}
    assert state[PARAMETER_NAMES.index("means")]["exp_avg_sq"].any()
    train(config, resume=True)
    final = [load_checkpoint(latest_checkpoint(tmp_path / run), "cpu")["model"] for run in "ab"]
    for name in PARAMETER_NAMES:
        assert torch.equal(final[0][name], final[1][name]), name
