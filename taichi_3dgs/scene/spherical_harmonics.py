"""Real spherical-harmonics basis of the official 3DGS code, in pure torch.

The basis order, constants and signs are those of graphdeco-inria/gaussian-splatting
`utils/sh_utils.py::eval_sh` (the same functions as gsplat's `_eval_sh_bases_fast` and the
original Taichi project's `SphericalHarmonics.py`; the constants live in `taichi_3dgs.color_model`):
index k = l * (l + 1) + m for band l and order m, DC first. A Gaussian's colour from direction
`dir` is `sum_k sh_coeffs[k] * Y_k(dir)` before the colour activation (docs/FORMATS.md).
"""
from __future__ import annotations

import torch

from taichi_3dgs.color_model import MAX_SH_DEGREE, SH_C0, SH_C1, SH_C2, SH_C3


def sh_basis(dirs: torch.Tensor, degree: int) -> torch.Tensor:
    """Evaluate the real SH basis functions Y_0 .. Y_{(degree+1)^2 - 1} at unit directions.

    Args:
        dirs: [..., 3] floating tensor of unit direction vectors (x, y, z), any frame (the SH are
            defined in the world frame for 3DGS colours). Not normalised here.
        degree: highest band, 0..3.

    Returns:
        [..., (degree + 1)^2] tensor, same dtype and device as `dirs`, DC first, in the order and
        with the signs of graphdeco `eval_sh` (Sloan, "Stupid Spherical Harmonics Tricks", 2008).

    Raises:
        ValueError: `degree` outside 0..3, or `dirs` not a floating [..., 3] tensor.
    """
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise ValueError(f"sh_basis: degree must be 0..{MAX_SH_DEGREE}, got {degree}")
    if dirs.shape[-1:] != (3,) or not dirs.is_floating_point():
        raise ValueError(f"sh_basis: dirs must be a floating [..., 3] tensor, got "
                         f"{tuple(dirs.shape)} {dirs.dtype}")
    x, y, z = dirs.unbind(-1)
    bases = [torch.full_like(x, SH_C0)]
    if degree >= 1:
        bases += [-SH_C1 * y, SH_C1 * z, -SH_C1 * x]
    if degree >= 2:
        xx, yy, zz = x * x, y * y, z * z
        bases += [
            SH_C2[0] * x * y,
            SH_C2[1] * y * z,
            SH_C2[2] * (2.0 * zz - xx - yy),
            SH_C2[3] * x * z,
            SH_C2[4] * (xx - yy),
        ]
    if degree >= 3:
        bases += [
            SH_C3[0] * y * (3.0 * xx - yy),
            SH_C3[1] * x * y * z,
            SH_C3[2] * y * (4.0 * zz - xx - yy),
            SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy),
            SH_C3[4] * x * (4.0 * zz - xx - yy),
            SH_C3[5] * z * (xx - yy),
            SH_C3[6] * x * (xx - 3.0 * yy),
        ]
    return torch.stack(bases, dim=-1)
