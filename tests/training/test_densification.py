"""Densification strategies on synthetic Gaussians: counts, Adam state, the official rules, MCMC."""
from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from taichi_3dgs.scene.model import GaussianModel
from taichi_3dgs.training.config import DensificationConfig, LearningRateConfig, MCMCConfig
from taichi_3dgs.training.strategies.default import DefaultStrategy
from taichi_3dgs.training.strategies.mcmc import MCMCStrategy, relocation_opacity_and_scale
from taichi_3dgs.training.optimization import make_optimizer

EXTENT = 2.0


def make_model(n: int, seed: int = 0) -> GaussianModel:
    gen = torch.Generator().manual_seed(seed)
    return GaussianModel(
        torch.randn(n, 3, generator=gen),
        torch.nn.functional.normalize(torch.randn(n, 4, generator=gen), dim=-1),
        torch.full((n, 3), math.log(0.005)),  # small: 0.005 <= 0.01 x extent
        torch.zeros(n),  # opacity 0.5
        torch.randn(n, 16, 3, generator=gen) * 0.1,
    )


def take_adam_step(model: GaussianModel, optimizer: torch.optim.Optimizer) -> None:
    loss = sum((p**2).sum() for p in model.parameters())
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def assert_adam_state_matches_parameters(model: GaussianModel, optimizer: torch.optim.Optimizer) -> None:
    for group in optimizer.param_groups:
        param = group["params"][0]
        assert param is getattr(model, group["name"])
        state = optimizer.state[param]
        assert state["exp_avg"].shape == param.shape, group["name"]
        assert state["exp_avg_sq"].shape == param.shape, group["name"]


def fake_render(n: int, grad_norm_ndc: torch.Tensor, width: int = 100, height: int = 80, radii=None):
    """A render whose view-space gradient (NDC units) has norm grad_norm_ndc [n] along x."""
    means2d = torch.zeros(n, 2)
    means2d.grad = torch.stack([grad_norm_ndc / (width / 2.0), torch.zeros(n)], dim=1)
    radii = torch.full((n,), 5, dtype=torch.int32) if radii is None else radii
    return SimpleNamespace(radii=radii, means2d=means2d), width, height


def test_clone_split_and_prune_follow_the_official_rules():
    n = 10
    model = make_model(n)
    with torch.no_grad():
        model.log_scales[5:8] = math.log(0.5)  # large: split candidates
        model.opacity_logits[9] = torch.logit(torch.tensor(0.001))  # transparent: pruned
    optimizer = make_optimizer(model, LearningRateConfig(), EXTENT)
    take_adam_step(model, optimizer)
    config = DensificationConfig(num_iterations_warm_up=0, num_iterations_densify=1)
    strategy = DefaultStrategy(config, EXTENT)
    grads = torch.full((n,), 1e-5)
    grads[[0, 1, 5, 6]] = 1e-3  # above 2e-4: 0, 1 cloned (small); 5, 6 split (large)
    out, w, h = fake_render(n, grads)
    strategy.step_post_backward(1, [(out, w, h)])
    parent_means = model.means[[5, 6]].detach().clone()
    parent_scale = float(torch.exp(model.log_scales[5, 0]))  # 0.5 after one Adam step
    large_kept_scale = float(torch.exp(model.log_scales[7, 0]))
    strategy.step_post_optimizer(1, model, optimizer, 1e-4, torch.Generator().manual_seed(0))
    # 10 + 2 clones + 2 x 2 children - 2 split parents - 1 transparent = 13
    assert model.num_gaussians == 13
    assert strategy.last_counts == {"cloned": 2, "split": 2, "pruned": 3, "before": 10}
    assert_adam_state_matches_parameters(model, optimizer)
    scales = torch.exp(model.log_scales.detach()).max(dim=1).values
    children = torch.isclose(scales, torch.tensor(parent_scale / 1.6))
    assert int(children.sum()) == 4  # scale / 1.6
    assert int(torch.isclose(scales, torch.tensor(large_kept_scale)).sum()) == 1  # row 7: low gradient, kept
    distances = torch.cdist(model.means[children].detach(), parent_means).min(dim=1).values
    assert float(distances.max()) < 0.5 * 4  # sampled from the parent Gaussians (std 0.5)


def test_kept_rows_keep_their_adam_moments_and_new_rows_start_at_zero():
    n = 6
    model = make_model(n)
    optimizer = make_optimizer(model, LearningRateConfig(), EXTENT)
    take_adam_step(model, optimizer)
    before = optimizer.state[model.means]["exp_avg"].clone()
    strategy = DefaultStrategy(DensificationConfig(num_iterations_warm_up=0, num_iterations_densify=1), EXTENT)
    grads = torch.zeros(n)
    grads[2] = 1.0  # clone row 2 only
    out, w, h = fake_render(n, grads)
    strategy.step_post_backward(1, [(out, w, h)])
    strategy.step_post_optimizer(1, model, optimizer, 1e-4, torch.Generator().manual_seed(0))
    after = optimizer.state[model.means]["exp_avg"]
    assert model.num_gaussians == n + 1
    assert torch.equal(after[:n], before)
    assert float(after[n:].abs().max()) == 0.0
    assert torch.equal(model.means[n], model.means[2])


def test_gradient_is_averaged_over_the_steps_a_gaussian_was_visible():
    n = 2
    strategy = DefaultStrategy(DensificationConfig(), EXTENT)
    visible_once = torch.tensor([5, 0], dtype=torch.int32)
    out, w, h = fake_render(n, torch.tensor([3e-4, 3e-4]))
    strategy.step_post_backward(1, [(out, w, h)])
    out, w, h = fake_render(n, torch.tensor([1e-4, 9.0]), radii=visible_once)
    strategy.step_post_backward(2, [(out, w, h)])
    mean = strategy.grad_norm_sum / strategy.visible_count
    assert torch.allclose(mean, torch.tensor([2e-4, 3e-4]))
    assert torch.equal(strategy.max_radii, torch.tensor([5.0, 5.0]))


def test_absgrad_densifies_on_the_absolute_gradient_against_its_own_threshold():
    n = 6
    model = make_model(n)
    optimizer = make_optimizer(model, LearningRateConfig(), EXTENT)
    config = DensificationConfig(num_iterations_warm_up=0, num_iterations_densify=1, absgrad=True)
    strategy = DefaultStrategy(config, EXTENT)
    assert strategy.absgrad and config.absgrad_threshold == 8e-4
    out, w, h = fake_render(n, torch.full((n,), 1e-2))  # the plain gradient, far above 2e-4: not used
    absgrad_ndc = torch.tensor([3e-3, 1e-3, 5e-4, 5e-4, 1e-5, 0.0])  # above 8e-4 for rows 0 and 1 only
    out.means2d_absgrad = torch.stack([torch.zeros(n), absgrad_ndc / (h / 2.0)], dim=1)  # y in pixels: x H/2
    strategy.step_post_backward(1, [(out, w, h)])
    torch.testing.assert_close(strategy.grad_norm_sum, absgrad_ndc)
    strategy.step_post_optimizer(1, model, optimizer, 1e-4, torch.Generator().manual_seed(0))
    assert strategy.last_counts == {"cloned": 2, "split": 0, "pruned": 0, "before": 6}


def test_absgrad_needs_renders_that_carry_the_statistic():
    strategy = DefaultStrategy(DensificationConfig(absgrad=True), EXTENT)
    out, w, h = fake_render(3, torch.zeros(3))
    out.means2d_absgrad = None
    with pytest.raises(ValueError, match=r"absgrad.*rasterize\(\.\.\., absgrad=True\)"):
        strategy.step_post_backward(1, [(out, w, h)])


def test_large_gaussians_are_pruned_only_after_the_first_opacity_reset():
    n = 4
    config = DensificationConfig(num_iterations_warm_up=0, num_iterations_densify=10, num_iterations_reset_alpha=30)
    for step, expected in ((20, 4), (40, 3)):
        model = make_model(n)
        with torch.no_grad():
            model.log_scales[3] = math.log(0.3 * EXTENT)  # > 0.1 x extent in world size
        optimizer = make_optimizer(model, LearningRateConfig(), EXTENT)
        strategy = DefaultStrategy(config, EXTENT)
        out, w, h = fake_render(n, torch.zeros(n))
        strategy.step_post_backward(step, [(out, w, h)])
        strategy.step_post_optimizer(step, model, optimizer, 1e-4, torch.Generator())
        assert model.num_gaussians == expected, step


def test_opacity_reset_caps_opacities_and_zeroes_their_moments():
    model = make_model(4)
    with torch.no_grad():
        model.opacity_logits[:] = torch.logit(torch.tensor([0.9, 0.5, 0.005, 0.001]))
    optimizer = make_optimizer(model, LearningRateConfig(), EXTENT)
    take_adam_step(model, optimizer)
    config = DensificationConfig(num_iterations_reset_alpha=3000, num_iterations_warm_up=3000)  # reset only
    strategy = DefaultStrategy(config, EXTENT)
    opacity_before = torch.sigmoid(model.opacity_logits.detach())
    strategy.step_post_optimizer(3000, model, optimizer, 1e-4, torch.Generator())
    expected = torch.minimum(opacity_before, torch.tensor(0.01))
    assert torch.allclose(torch.sigmoid(model.opacity_logits), expected, rtol=1e-5)
    assert float(optimizer.state[model.opacity_logits]["exp_avg"].abs().max()) == 0.0
    assert_adam_state_matches_parameters(model, optimizer)


def direct_relocation(opacity: float, scale: float, n: int) -> tuple[float, float]:
    """Eq. 9 of Kheradmand et al. 2024 as written: the double sum over i and k."""
    new_opacity = 1.0 - (1.0 - opacity) ** (1.0 / n)
    total = sum(math.comb(i - 1, k) * (-1) ** k / math.sqrt(k + 1) * new_opacity ** (k + 1)
                for i in range(1, n + 1) for k in range(i))
    return new_opacity, opacity / total * scale


@pytest.mark.parametrize("n", [1, 2, 3, 7])
def test_relocation_matches_the_paper_equation(n):
    opacities = torch.tensor([0.3, 0.9, 0.02])
    scales = torch.tensor([[1.0, 2.0, 0.5]] * 3)
    new_o, new_s = relocation_opacity_and_scale(opacities, scales, torch.full((3,), n))
    for i, o in enumerate(opacities.tolist()):
        expected_o, expected_s = direct_relocation(o, 1.0, n)
        assert math.isclose(float(new_o[i]), expected_o, rel_tol=1e-5)
        assert torch.allclose(new_s[i], scales[i] * expected_s, rtol=1e-5)
    # n copies of opacity o' composite to the original opacity
    assert torch.allclose(1 - (1 - new_o) ** n, opacities, rtol=1e-5)


def test_mcmc_relocates_dead_gaussians_and_grows_five_percent():
    n = 40
    model = make_model(n)
    with torch.no_grad():
        model.opacity_logits[:10] = -10.0  # dead
    optimizer = make_optimizer(model, LearningRateConfig(), EXTENT)
    take_adam_step(model, optimizer)
    strategy = MCMCStrategy(MCMCConfig(refine_start_iteration=0, refine_every=1))
    refined = strategy.step_post_optimizer(5, model, optimizer, 1e-4, torch.Generator().manual_seed(0))
    assert refined
    assert model.num_gaussians == 42  # int(1.05 x 40)
    assert float(torch.sigmoid(model.opacity_logits).min()) > 0.005  # no dead one left
    assert_adam_state_matches_parameters(model, optimizer)


def test_mcmc_respects_the_cap():
    model = make_model(40)
    optimizer = make_optimizer(model, LearningRateConfig(), EXTENT)
    strategy = MCMCStrategy(MCMCConfig(refine_start_iteration=0, refine_every=1, cap_max=41))
    strategy.step_post_optimizer(5, model, optimizer, 1e-4, torch.Generator().manual_seed(0))
    assert model.num_gaussians == 41


def test_mcmc_noise_moves_transparent_gaussians_but_not_opaque_ones():
    model = make_model(2)
    with torch.no_grad():
        model.opacity_logits[:] = torch.tensor([-8.0, 8.0])
        model.log_scales[:] = math.log(0.1)
    before = model.means.detach().clone()
    strategy = MCMCStrategy(MCMCConfig())
    strategy.inject_noise(model, 1e-4, torch.Generator().manual_seed(0))
    moved = (model.means.detach() - before).norm(dim=1)
    assert float(moved[0]) > 1e-3
    assert float(moved[1]) < 1e-6 * float(moved[0])


def test_mcmc_regulariser_is_the_weighted_mean_opacity_and_scale():
    model = make_model(3)
    loss = MCMCStrategy(MCMCConfig(opacity_reg=0.1, scale_reg=0.2)).regularization_loss(model)
    assert math.isclose(float(loss), 0.1 * 0.5 + 0.2 * 0.005, rel_tol=1e-5)
