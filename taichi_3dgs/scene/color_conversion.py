"""Convert the original project's `sigmoid` colour scenes to the official `linear` colour model.

The original Taichi project computed colour as `sigmoid(SH(dir))`; the official 3DGS code, its PLY
format and every splat viewer use `max(0, SH(dir) + 0.5)` (docs/FORMATS.md). No SH coefficients
reproduce a sigmoid exactly, so each Gaussian's colour is fitted: least squares over a fixed set of
view directions covering the sphere,

    c* = argmin_c  sum_j || B(d_j) c + 0.5 - sigmoid(B_orig(d_j) c_orig) ||^2 ,

solved in closed form as c* = pinv(B) (target - 0.5). The basis matrix B is the same for every
Gaussian, so one pseudo-inverse serves the whole scene (a batched matmul). The targets lie in
(0, 1), so the clamp max(0, .) of the linear model can only reduce the error of this fit.
"""
from __future__ import annotations

import math
from dataclasses import replace

import torch

from taichi_3dgs.color_model import MAX_SH_DEGREE, num_sh_coeffs
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.spherical_harmonics import sh_basis

DEFAULT_NUM_DIRECTIONS = 128
"""View directions of the fit: 8x the 16 unknowns per channel of a degree-3 fit."""

# Gaussians per batch: bounds the float32 [batch * 3, directions] work arrays to ~25 MB each.
_BATCH_SIZE = 16384


def fibonacci_sphere(num_directions: int, dtype: torch.dtype = torch.float64,
                     device: torch.device | str | None = None) -> torch.Tensor:
    """Nearly uniform unit directions on the sphere (Fibonacci / golden-angle lattice).

    Point i has z = 1 - (2i + 1) / M and azimuth i * pi * (3 - sqrt(5)) (Gonzalez, "Measurement of
    areas on a sphere using Fibonacci and latitude-longitude lattices", 2010).

    Returns:
        [num_directions, 3] tensor of unit vectors (x, y, z), deterministic.
    """
    index = torch.arange(num_directions, dtype=dtype, device=device)
    z = 1.0 - (2.0 * index + 1.0) / num_directions
    radius = torch.sqrt((1.0 - z * z).clamp_min(0.0))
    azimuth = index * (math.pi * (3.0 - math.sqrt(5.0)))
    return torch.stack([radius * torch.cos(azimuth), radius * torch.sin(azimuth), z], dim=1)


@torch.no_grad()
def sigmoid_to_linear(scene: GaussianScene, num_directions: int = DEFAULT_NUM_DIRECTIONS,
                      ) -> tuple[GaussianScene, float]:
    """Fit linear-colour SH coefficients to a sigmoid-colour scene (module docstring).

    Args:
        scene: any valid scene; a `linear` one is returned unchanged.
        num_directions: view directions of the fit (Fibonacci sphere), at least 16.

    Returns:
        (linear_scene, mean_abs_error): a `linear`, degree-3 scene sharing every tensor of `scene`
        except `sh_coeffs` ([N, 16, 3] float32, on the scene's device), and the mean absolute
        difference between the fitted colours `max(0, SH(dir) + 0.5)` and the original
        `sigmoid(SH_orig(dir))` over all Gaussians, fit directions and RGB channels (colour units,
        0..1). For a linear scene: (scene, 0.0).

    Raises:
        ValueError: `scene.validate()` fails, or fewer than 16 directions.
    """
    scene.validate()
    if scene.color_activation == "linear":
        return scene, 0.0
    num_coeffs = num_sh_coeffs(MAX_SH_DEGREE)
    if num_directions < num_coeffs:
        raise ValueError(f"sigmoid_to_linear: num_directions must be >= {num_coeffs} (the SH "
                         f"coefficients per channel), got {num_directions}")
    device = scene.sh_coeffs.device
    dirs = fibonacci_sphere(num_directions, device=device)
    num_orig = num_sh_coeffs(scene.sh_degree)
    # Rows are (Gaussian, channel) pairs so that every step is one plain matrix product.
    basis = sh_basis(dirs, MAX_SH_DEGREE)  # [M, 16]
    basis_orig_t = basis[:, :num_orig].T.float()  # [num_orig, M]
    fit_t = torch.linalg.pinv(basis).T.float()  # [M, 16]; pinv in float64 for a clean inverse
    basis_t = basis.T.float()  # [16, M]
    fitted_coeffs = torch.empty_like(scene.sh_coeffs)
    total_abs_error = 0.0
    for start in range(0, scene.num_gaussians, _BATCH_SIZE):
        coeffs_orig = scene.sh_coeffs[start:start + _BATCH_SIZE, :num_orig]  # [n, num_orig, 3]
        rows = coeffs_orig.transpose(1, 2).reshape(-1, num_orig)  # [n * 3, num_orig]
        target = torch.sigmoid(rows @ basis_orig_t)  # [n * 3, M]
        coeffs = (target - 0.5) @ fit_t  # [n * 3, 16]
        colour = (coeffs @ basis_t + 0.5).clamp_min(0.0)
        total_abs_error += float((colour - target).abs().sum(dtype=torch.float64))
        fitted_coeffs[start:start + _BATCH_SIZE] = coeffs.reshape(-1, 3, num_coeffs).transpose(1, 2)
    num_values = scene.num_gaussians * num_directions * 3
    mean_abs_error = total_abs_error / num_values if num_values else 0.0
    linear_scene = replace(scene, sh_coeffs=fitted_coeffs, sh_degree=MAX_SH_DEGREE,
                           color_activation="linear")
    return linear_scene, mean_abs_error
