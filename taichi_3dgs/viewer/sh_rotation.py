"""Rotation of real spherical-harmonics colour coefficients (bands 1..3).

When a Gaussian scene is rotated by R (object frame -> world frame), a Gaussian's colour seen
along the world direction d must be the colour the unrotated Gaussian showed along R^T d:

    sum_k c'_k Y_k(d) = sum_k c_k Y_k(R^T d)    for every unit d.

Each band l of the real SH basis spans a rotation-invariant space, so Y_l(R^T d) = M_l Y_l(d)
for a (2l+1) x (2l+1) matrix M_l (the real Wigner D-matrix of R^T), and the rotated
coefficients are c'_l = M_l^T c_l; band 0 (the DC colour) is unchanged.

M_l is found by least squares on the package's own basis (`taichi_3dgs.scene.sh_basis`, the
official order and signs): with A[i] = Y_l(d_i) and B[i] = Y_l(R^T d_i) at S > 2l+1 directions
d_i spread over the sphere, B = A M_l^T holds exactly, so M_l^T = lstsq(A, B). Because the
relation is an identity of the basis functions and A has full column rank, this recovers M_l
exactly up to float64 rounding (~1e-15), without hand-written Wigner recursions whose sign
conventions would have to match the basis (cf. Green, "Spherical Harmonic Lighting: The Gritty
Details", 2003, Sec. "Rotating SH"; Ivanic & Ruedenberg, J. Phys. Chem. 1996, for the closed form).
"""
from __future__ import annotations

import numpy as np
import torch

from taichi_3dgs.color_model import MAX_SH_DEGREE, num_sh_coeffs
from taichi_3dgs.scene.color_conversion import fibonacci_sphere
from taichi_3dgs.scene.spherical_harmonics import sh_basis
from taichi_3dgs.viewer.geometry import check_rotation

_NUM_FIT_DIRECTIONS = 64
"""Directions of the least-squares fit: 9x the 7 unknowns per row of band 3."""


def sh_rotation_matrices(rotation: np.ndarray, degree: int = MAX_SH_DEGREE) -> list[np.ndarray]:
    """The matrices that rotate each SH band's coefficients (module docstring).

    Args:
        rotation: [3, 3] rotation matrix R (proper: R^T R = I, det R = +1), mapping the frame the
            coefficients are defined in to the new frame (object -> world).
        degree: highest band, 0..3.

    Returns:
        `degree + 1` float64 arrays; entry l is the [2l+1, 2l+1] matrix X_l = M_l^T with
        c'_l = X_l @ c_l for the band's coefficients c_l of one colour channel
        (entry 0 is [[1.0]]).

    Raises:
        ValueError: `rotation` is not a 3x3 proper rotation (`check_rotation`), or `degree`
            outside 0..3.
    """
    rotation = check_rotation(rotation, "rotation")
    if not 0 <= degree <= MAX_SH_DEGREE:
        raise ValueError(f"degree: expected 0..{MAX_SH_DEGREE}, got {degree}")
    dirs = fibonacci_sphere(_NUM_FIT_DIRECTIONS, dtype=torch.float64)
    rotated_back = dirs @ torch.from_numpy(rotation)  # row i is R^T d_i
    basis = sh_basis(dirs, degree).numpy()
    basis_rotated = sh_basis(rotated_back, degree).numpy()
    matrices = []
    for band in range(degree + 1):
        columns = slice(num_sh_coeffs(band - 1) if band else 0, num_sh_coeffs(band))
        solution, *_ = np.linalg.lstsq(basis[:, columns], basis_rotated[:, columns], rcond=None)
        matrices.append(solution)
    return matrices


def rotate_sh(sh_coeffs: torch.Tensor, rotation: np.ndarray, sh_degree: int = MAX_SH_DEGREE
              ) -> torch.Tensor:
    """Rotate SH colour coefficients by `rotation` (module docstring).

    Args:
        sh_coeffs: [N, K, 3] float tensor, K >= (sh_degree + 1)^2 coefficients per RGB channel in
            the official order (DC first); bands above `sh_degree` are copied unchanged.
        rotation: [3, 3] proper rotation matrix (old frame -> new frame).
        sh_degree: highest band to rotate, 0..3.

    Returns:
        [N, K, 3] tensor of the same dtype and device: the coefficients whose colour along d
        equals the input's colour along R^T d.

    Raises:
        ValueError: see `sh_rotation_matrices`; `sh_coeffs` not [N, K, 3] with enough K.
    """
    if sh_coeffs.ndim != 3 or sh_coeffs.shape[2] != 3 or sh_coeffs.shape[1] < num_sh_coeffs(sh_degree):
        raise ValueError(f"sh_coeffs: expected [N, >= {num_sh_coeffs(sh_degree)}, 3], got "
                         f"{list(sh_coeffs.shape)}")
    rotated = sh_coeffs.clone()
    for band, matrix in enumerate(sh_rotation_matrices(rotation, sh_degree)):
        if band == 0:
            continue
        start, stop = num_sh_coeffs(band - 1), num_sh_coeffs(band)
        band_matrix = torch.from_numpy(matrix).to(sh_coeffs.device, sh_coeffs.dtype)
        rotated[:, start:stop] = torch.einsum("ij,njc->nic", band_matrix, sh_coeffs[:, start:stop])
    return rotated
