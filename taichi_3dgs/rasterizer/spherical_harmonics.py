"""View-dependent colour from real spherical harmonics (forward and hand-written backward).

Basis, order and signs of the official 3DGS code (graphdeco-inria `utils/sh_utils.py` and
`computeColorFromSH` in `forward.cu`), degree <= 3, 16 coefficients per channel, DC first. The
direction is normalize(mean - camera_center) in the world frame; its gradient reaches `means`
through the normalisation (official `computeColorFromSH` backward), and `camera_center`, when it
requires grad, as minus the sum of those per-Gaussian gradients (a torch sum: no atomics).
Given the visible Gaussians' indices (the projection's `visible_ids`, gsplat's packed mode), the
forward and the backward run over those only, into packed [V, ...] arrays that torch scatters to
their distinct rows (no atomics; the other rows of the colours and gradients are 0).
"""

import taichi as ti
import torch

from taichi_3dgs.backend import init_taichi
from taichi_3dgs.color_model import MAX_SH_DEGREE, NUM_SH_COEFFS, SH_C0, SH_C1, SH_C2, SH_C3, num_sh_coeffs
from taichi_3dgs.rasterizer.ndarrays import F32_1D, F32_2D, F32_3D, I64_1D, check_tensor, scatter_rows

Vec16 = ti.types.vector(NUM_SH_COEFFS, ti.f32)
Mat16x3 = ti.types.matrix(NUM_SH_COEFFS, 3, ti.f32)


@ti.func
def sh_basis(d: ti.math.vec3) -> Vec16:
    """The 16 real SH basis values Y_k(d) for a unit direction d."""
    x, y, z = d.x, d.y, d.z
    xx, yy, zz = x * x, y * y, z * z
    return Vec16(
        SH_C0,
        -SH_C1 * y, SH_C1 * z, -SH_C1 * x,
        SH_C2[0] * x * y, SH_C2[1] * y * z, SH_C2[2] * (2.0 * zz - xx - yy), SH_C2[3] * x * z,
        SH_C2[4] * (xx - yy),
        SH_C3[0] * y * (3.0 * xx - yy), SH_C3[1] * x * y * z, SH_C3[2] * y * (4.0 * zz - xx - yy),
        SH_C3[3] * z * (2.0 * zz - 3.0 * xx - 3.0 * yy), SH_C3[4] * x * (4.0 * zz - xx - yy),
        SH_C3[5] * z * (xx - yy), SH_C3[6] * x * (xx - 3.0 * yy),
    )


@ti.func
def sh_basis_jacobian(d: ti.math.vec3) -> Mat16x3:
    """dY_k/d(x, y, z) of the polynomials in `sh_basis` (rows k, columns x, y, z)."""
    x, y, z = d.x, d.y, d.z
    xx, yy, zz = x * x, y * y, z * z
    return Mat16x3(
        [
            [0.0, 0.0, 0.0],
            [0.0, -SH_C1, 0.0], [0.0, 0.0, SH_C1], [-SH_C1, 0.0, 0.0],
            [SH_C2[0] * y, SH_C2[0] * x, 0.0],
            [0.0, SH_C2[1] * z, SH_C2[1] * y],
            [-2.0 * SH_C2[2] * x, -2.0 * SH_C2[2] * y, 4.0 * SH_C2[2] * z],
            [SH_C2[3] * z, 0.0, SH_C2[3] * x],
            [2.0 * SH_C2[4] * x, -2.0 * SH_C2[4] * y, 0.0],
            [6.0 * SH_C3[0] * x * y, SH_C3[0] * (3.0 * xx - 3.0 * yy), 0.0],
            [SH_C3[1] * y * z, SH_C3[1] * x * z, SH_C3[1] * x * y],
            [-2.0 * SH_C3[2] * x * y, SH_C3[2] * (4.0 * zz - xx - 3.0 * yy), 8.0 * SH_C3[2] * y * z],
            [-6.0 * SH_C3[3] * x * z, -6.0 * SH_C3[3] * y * z, SH_C3[3] * (6.0 * zz - 3.0 * xx - 3.0 * yy)],
            [SH_C3[4] * (4.0 * zz - 3.0 * xx - yy), -2.0 * SH_C3[4] * x * y, 8.0 * SH_C3[4] * x * z],
            [2.0 * SH_C3[5] * x * z, -2.0 * SH_C3[5] * y * z, SH_C3[5] * (xx - yy)],
            [SH_C3[6] * (3.0 * xx - 3.0 * yy), -6.0 * SH_C3[6] * x * y, 0.0],
        ]
    )


@ti.func
def view_direction(means: ti.template(), i: ti.i32, camera_center: ti.template()):
    """(unit direction from the camera centre to Gaussian i, distance); a zero vector gives +z."""
    v = ti.math.vec3(means[i, 0] - camera_center[0], means[i, 1] - camera_center[1],
                     means[i, 2] - camera_center[2])
    dist = v.norm()
    d = ti.math.vec3(0.0, 0.0, 1.0)
    if dist > 0.0:
        d = v / dist
    return d, dist


@ti.kernel
def _sh_forward(
    sh_coeffs: F32_3D, means: F32_2D, camera_center: F32_1D, num_bases: ti.i32, ids: I64_1D, colors: F32_2D
):
    for row in range(ids.shape[0]):
        i = ti.cast(ids[row], ti.i32)
        d, _ = view_direction(means, i, camera_center)
        basis = sh_basis(d)
        for ch in ti.static(range(3)):
            acc = 0.0
            for k in ti.static(range(NUM_SH_COEFFS)):
                if k < num_bases:
                    acc += basis[k] * sh_coeffs[i, k, ch]
            colors[row, ch] = acc


@ti.kernel
def _sh_backward(
    sh_coeffs: F32_3D, means: F32_2D, camera_center: F32_1D, num_bases: ti.i32, ids: I64_1D, v_colors: F32_2D,
    v_sh_coeffs: F32_3D, v_means: F32_2D,
):
    # Inputs are read at Gaussian i = ids[row], outputs written to the packed row.
    for row in range(ids.shape[0]):
        i = ti.cast(ids[row], ti.i32)
        d, dist = view_direction(means, i, camera_center)
        basis = sh_basis(d)
        jac = sh_basis_jacobian(d)
        g = ti.math.vec3(v_colors[i, 0], v_colors[i, 1], v_colors[i, 2])
        v_d = ti.math.vec3(0.0)
        for k in ti.static(range(NUM_SH_COEFFS)):
            for ch in ti.static(range(3)):
                v_sh_coeffs[row, k, ch] = 0.0
            if k < num_bases:
                g_k = 0.0
                for ch in ti.static(range(3)):
                    v_sh_coeffs[row, k, ch] = basis[k] * g[ch]
                    g_k += sh_coeffs[i, k, ch] * g[ch]
                for a in ti.static(range(3)):
                    v_d[a] += g_k * jac[k, a]
        v_mean = ti.math.vec3(0.0)
        if dist > 0.0:
            v_mean = (v_d - d * d.dot(v_d)) / dist
        for a in ti.static(range(3)):
            v_means[row, a] = v_mean[a]


class _EvaluateSH(torch.autograd.Function):
    @staticmethod
    def forward(ctx, sh_coeffs, means, camera_center, sh_degree, ids):
        # see _ProjectGaussians.forward
        sh_coeffs, means, camera_center = sh_coeffs.detach(), means.detach(), camera_center.detach()
        colors = torch.empty((ids.shape[0], 3), dtype=torch.float32, device=means.device)
        num_bases = num_sh_coeffs(sh_degree)
        if ids.shape[0] > 0:
            _sh_forward(sh_coeffs, means, camera_center, num_bases, ids, colors)
        colors = scatter_rows(colors, ids, means.shape[0])
        ctx.save_for_backward(sh_coeffs, means, camera_center, ids)
        ctx.num_bases = num_bases
        return colors

    @staticmethod
    def backward(ctx, v_colors):
        sh_coeffs, means, camera_center, ids = ctx.saved_tensors
        v_sh_coeffs = torch.empty((ids.shape[0], *sh_coeffs.shape[1:]), dtype=torch.float32, device=means.device)
        v_means = torch.empty((ids.shape[0], 3), dtype=torch.float32, device=means.device)
        if ids.shape[0] > 0:
            _sh_backward(sh_coeffs, means, camera_center, ctx.num_bases, ids, v_colors.contiguous(),
                         v_sh_coeffs, v_means)
        v_sh_coeffs = scatter_rows(v_sh_coeffs, ids, means.shape[0])
        v_means = scatter_rows(v_means, ids, means.shape[0])
        # The colour depends on mean - camera_center only.
        v_camera_center = -v_means.sum(0) if ctx.needs_input_grad[2] else None
        return v_sh_coeffs, v_means, v_camera_center, None, None


def evaluate_sh(
    sh_coeffs: torch.Tensor, means: torch.Tensor, camera_center: torch.Tensor, sh_degree: int,
    visible_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Raw SH colour sum_k sh_coeffs[:, k] * Y_k(normalize(means - camera_center)), k < (deg+1)^2.

    No +0.5 offset and no activation (the caller applies `color_activation`).
    Differentiable w.r.t. sh_coeffs, means and camera_center.

    Args:
        sh_coeffs: [N, 16, 3] float32, SH coefficients per colour channel, DC first.
        means: [N, 3] float32, world-frame centres.
        camera_center: [3] float32, camera centre in the world frame.
        sh_degree: 0..3; bands above it are ignored (their gradient is zero).
        visible_ids: None (every Gaussian), or [V] int64 distinct indices in [0, N) (the
            projection's `visible_ids`): only these rows are evaluated and differentiated.

    Returns:
        [N, 3] float32 raw colours; rows outside `visible_ids` are 0, with zero gradient.

    Raises:
        ValueError: sh_degree outside 0..3, or a tensor of the wrong shape/dtype/device.
    """
    init_taichi()
    if sh_degree not in range(MAX_SH_DEGREE + 1):
        raise ValueError(f"sh_degree: expected 0, 1, 2 or 3, got {sh_degree!r}")
    n = means.shape[0] if means.dim() == 2 else -1
    check_tensor("means", means, (n, 3), means.device)
    check_tensor("sh_coeffs", sh_coeffs, (n, NUM_SH_COEFFS, 3), means.device)
    check_tensor("camera_center", camera_center, (3,), means.device)
    if visible_ids is None:
        visible_ids = torch.arange(n, dtype=torch.int64, device=means.device)
    if visible_ids.dtype != torch.int64 or visible_ids.dim() != 1 or visible_ids.device != means.device:
        raise ValueError(f"visible_ids: expected a 1-D int64 tensor on {means.device}, got "
                         f"{visible_ids.dtype} of shape {list(visible_ids.shape)} on {visible_ids.device}")
    return _EvaluateSH.apply(sh_coeffs.contiguous(), means.contiguous(), camera_center.contiguous(),
                             int(sh_degree), visible_ids.contiguous())
