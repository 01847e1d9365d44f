"""`GaussianScene`: the parameters of a trained 3D Gaussian Splatting scene.

One record of torch tensors in the conventions of docs/FORMATS.md ("Gaussian
parameters"), shared by the parquet and PLY readers/writers, the trainer and the viewer.
Activations (Kerbl et al. 2023, Sec. 4; official `scene/gaussian_model.py`): scales =
exp(log_scales), opacities = sigmoid(opacity_logits), rotation = normalize(quats), and colour
`max(0, SH(dir) + 0.5)` ("linear") or `sigmoid(SH(dir))` ("sigmoid", the original Taichi project).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, replace

import numpy as np
import torch

from taichi_3dgs.color_model import COLOR_ACTIVATIONS, MAX_SH_DEGREE, NUM_SH_COEFFS, num_sh_coeffs

TENSOR_FIELDS = ("means", "quats", "log_scales", "opacity_logits", "sh_coeffs")
"""The per-Gaussian tensor fields of `GaussianScene`, in declaration order."""


@dataclass
class GaussianScene:
    """Parameters of N 3D Gaussians (docs/FORMATS.md "Gaussian parameters").

    Attributes:
        means: [N, 3] float32, centres in the world frame (scene units).
        quats: [N, 4] float32, rotation quaternions **w, x, y, z**; not necessarily unit length
            (normalised at use, as the official code does).
        log_scales: [N, 3] float32, log of the per-axis standard deviation in world units.
        opacity_logits: [N] float32, opacity = sigmoid(opacity_logits).
        sh_coeffs: [N, 16, 3] float32, real SH coefficients per RGB channel in the official basis
            order and signs (`spherical_harmonics.sh_basis`), DC first; coefficients of bands above
            `sh_degree` are zero.
        sh_degree: highest SH band in use, 0..3.
        color_activation: "linear" (official: rgb = max(0, SH + 0.5)) or "sigmoid" (original
            Taichi project: rgb = sigmoid(SH)).
        antialiased: the scene was trained with the Mip-Splatting 2D filter (Yu et al. 2024,
            eq. 9; `RasterizerConfig.antialiased`), so every renderer must apply it; False for
            scenes trained without it and for files that do not record it.

    All tensors live on one device. `validate()` checks the whole record.
    """

    means: torch.Tensor
    quats: torch.Tensor
    log_scales: torch.Tensor
    opacity_logits: torch.Tensor
    sh_coeffs: torch.Tensor
    sh_degree: int = MAX_SH_DEGREE
    color_activation: str = "linear"
    antialiased: bool = False

    @property
    def num_gaussians(self) -> int:
        """N, the number of Gaussians."""
        return int(self.means.shape[0])

    def to(self, device: torch.device | str) -> GaussianScene:
        """Return a copy with every tensor on `device` (tensors already there are shared)."""
        return replace(self, **{name: getattr(self, name).to(device) for name in TENSOR_FIELDS})

    def validate(self) -> None:
        """Check shapes, dtypes, devices, finiteness and the scalar fields.

        Raises:
            ValueError: naming the first offending field (and row for a non-finite value) and
                what was expected.
        """
        if not isinstance(self.means, torch.Tensor) or self.means.ndim != 2:
            raise ValueError(f"GaussianScene.means: expected a [N, 3] tensor, got "
                             f"{_describe(self.means)}")
        n = self.means.shape[0]
        expected_shapes = {
            "means": (n, 3),
            "quats": (n, 4),
            "log_scales": (n, 3),
            "opacity_logits": (n,),
            "sh_coeffs": (n, NUM_SH_COEFFS, 3),
        }
        for name, shape in expected_shapes.items():
            value = getattr(self, name)
            if not isinstance(value, torch.Tensor) or tuple(value.shape) != shape:
                raise ValueError(f"GaussianScene.{name}: expected shape {list(shape)} (N = {n} "
                                 f"from means), got {_describe(value)}")
            if value.dtype != torch.float32:
                raise ValueError(f"GaussianScene.{name}: expected dtype torch.float32, got "
                                 f"{value.dtype}")
            if value.device != self.means.device:
                raise ValueError(f"GaussianScene.{name}: on {value.device}, expected the device "
                                 f"of means ({self.means.device})")
            finite = torch.isfinite(value.detach().reshape(n, math.prod(shape[1:]))).all(dim=1)
            if not bool(finite.all()):
                row = int((~finite).nonzero()[0, 0])
                raise ValueError(f"GaussianScene.{name}: non-finite value in row {row} "
                                 f"(expected finite numbers)")
        if isinstance(self.sh_degree, bool) or not isinstance(self.sh_degree, numbers.Integral) \
                or not 0 <= self.sh_degree <= MAX_SH_DEGREE:
            raise ValueError(f"GaussianScene.sh_degree: expected an int 0..{MAX_SH_DEGREE}, got "
                             f"{self.sh_degree!r}")
        if self.color_activation not in COLOR_ACTIVATIONS:
            raise ValueError(f"GaussianScene.color_activation: expected one of "
                             f"{list(COLOR_ACTIVATIONS)}, got {self.color_activation!r}")
        if not isinstance(self.antialiased, bool):
            raise ValueError(f"GaussianScene.antialiased: expected True or False, got "
                             f"{self.antialiased!r}")
        unused = self.sh_coeffs.detach()[:, num_sh_coeffs(self.sh_degree):, :]
        nonzero = (unused != 0).flatten(start_dim=1).any(dim=1)
        if bool(nonzero.any()):
            row = int(nonzero.nonzero()[0, 0])
            raise ValueError(f"GaussianScene.sh_coeffs: row {row} has non-zero coefficients in "
                             f"bands above sh_degree = {self.sh_degree} (expected zeros there)")


def checked_float32(values: np.ndarray, source: str, field: str) -> np.ndarray:
    """Return a numeric column as a float32 array, after checking every value is finite.

    Shared by the parquet and PLY readers so that both report bad values the same way.

    Args:
        values: [N] numeric array (any integer or float dtype).
        source: the file the column comes from, for the error message.
        field: what the values are, for the error message, e.g. "column 'x'" or
            "vertex property 'opacity'".

    Returns:
        [N] float32 array (a float32 input is returned without copying).

    Raises:
        ValueError: non-numeric dtype, or a NaN/inf value (naming the first such row).
    """
    if values.dtype.kind not in "fiu":
        raise ValueError(f"{source}: {field} has dtype {values.dtype}, expected float32")
    values = values.astype(np.float32, copy=False)
    finite = np.isfinite(values)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise ValueError(f"{source}: {field} row {row} is {values[row]}, expected a finite "
                         f"number")
    return values


def _describe(value: object) -> str:
    if isinstance(value, torch.Tensor):
        return f"shape {list(value.shape)} {value.dtype}"
    return type(value).__name__
