"""Random but valid `GaussianScene`s for the scene tests (imported by tests in this folder)."""
from __future__ import annotations

import torch

from taichi_3dgs.color_model import NUM_SH_COEFFS, num_sh_coeffs
from taichi_3dgs.scene.gaussians import TENSOR_FIELDS, GaussianScene


def random_scene(num_gaussians: int = 64, sh_degree: int = 3, color_activation: str = "linear",
                 seed: int = 0, antialiased: bool = False) -> GaussianScene:
    """N Gaussians with unnormalised quaternions and colour spread over most of 0..1.

    SH: DC with std 2 (sigmoid colours ~0.1..0.9), band l with std 0.5 / l, bands above
    `sh_degree` zero, the magnitudes of trained scenes of the original project.
    """
    generator = torch.Generator().manual_seed(seed)

    def normal(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator)

    band = torch.tensor([l for l in range(4) for _ in range(2 * l + 1)], dtype=torch.float32)
    band_std = torch.where(band == 0, torch.tensor(2.0), 0.5 / band.clamp_min(1.0))
    sh_coeffs = normal(num_gaussians, NUM_SH_COEFFS, 3) * band_std[None, :, None]
    sh_coeffs[:, num_sh_coeffs(sh_degree):] = 0.0
    return GaussianScene(
        means=normal(num_gaussians, 3) * 10.0,
        quats=normal(num_gaussians, 4),
        log_scales=normal(num_gaussians, 3) - 2.0,
        opacity_logits=normal(num_gaussians),
        sh_coeffs=sh_coeffs,
        sh_degree=sh_degree,
        color_activation=color_activation,
        antialiased=antialiased,
    )


def assert_scenes_identical(actual: GaussianScene, expected: GaussianScene) -> None:
    """Every tensor equal bit for bit (same shape and dtype), same degree, activation and
    `antialiased` flag."""
    for name in TENSOR_FIELDS:
        a, e = getattr(actual, name), getattr(expected, name)
        assert a.dtype == e.dtype and a.shape == e.shape, name
        assert torch.equal(a, e), f"{name} differs"
    assert actual.sh_degree == expected.sh_degree
    assert actual.color_activation == expected.color_activation
    assert actual.antialiased == expected.antialiased
