"""EWA projection of 3D Gaussians to screen space (forward and hand-written backward).

Math: Zwicker et al., "EWA Splatting" (2002), eq. 31 (cov2d = J W Sigma W^T J^T), as used by
Kerbl et al., "3D Gaussian Splatting" (2023), eq. 5-6, with the official code's details
(graphdeco-inria/diff-gaussian-rasterization, `computeCov2D`): J built from x/z and y/z clamped to
`fov_clamp` x tan(half FOV), `eps2d` added to the diagonal, radius from the largest eigenvalue.
The backward is the chain rule through exactly these steps (same structure as gsplat's
`persp_proj_vjp`, `covar_world_to_cam_vjp`, `quat_scale_to_covar_vjp`). The camera gradient, only
when the viewmat requires grad, is written per Gaussian and summed with torch (no atomics: the sum
is deterministic), as gsplat's `fully_fused_projection` backward computes `v_viewmats`.

Packed, as gsplat's `packed=True` mode: the forward runs over all N Gaussians (it decides which are
visible) and lists the visible ones once (`Projection.visible_ids`); the backward runs over those
only, into packed rows that torch scatters to their distinct places (culled rows 0), so no atomics
are needed and the per-Gaussian math, hence every bit of the result, is that of a loop over all N.
"""

from typing import NamedTuple

import taichi as ti
import torch

from taichi_3dgs.backend import init_taichi
from taichi_3dgs.rasterizer.config import RasterizerConfig
from taichi_3dgs.rasterizer.ndarrays import F32_1D, F32_2D, F32_3D, I32_1D, I64_1D, check_tensor, scatter_rows


class Projection(NamedTuple):
    """Screen-space footprint of N Gaussians seen by one camera.

    Attributes:
        means2d: [N, 2] float32, projected centres in pixels (u right, v down; pixel centres at +0.5).
        conics: [N, 3] float32, (a, b, c) of the inverse dilated 2D covariance [[a, b], [b, c]], 1/px^2.
        depths: [N] float32, camera-frame z in world units (also for culled Gaussians).
        radii: [N] int32, screen radius in pixels; 0 = culled (behind near / beyond far plane,
            degenerate covariance, or footprint entirely outside the image).
        compensations: [N] float32, sqrt(det(cov) / det(cov + eps2d I)) when `antialiased`,
            else 1; 0 for culled Gaussians.
        visible_ids: [V] int64, ascending indices of the Gaussians with radius > 0 (the rows the
            later stages and every backward work on).
    """

    means2d: torch.Tensor
    conics: torch.Tensor
    depths: torch.Tensor
    radii: torch.Tensor
    compensations: torch.Tensor
    visible_ids: torch.Tensor


@ti.func
def quat_to_rotmat(q: ti.math.vec4) -> ti.math.mat3:
    """Rotation matrix of a unit quaternion (w, x, y, z)."""
    w, x, y, z = q[0], q[1], q[2], q[3]
    return ti.math.mat3(
        [
            [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z), 2.0 * (x * z + w * y)],
            [2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - w * x)],
            [2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)],
        ]
    )


@ti.func
def rotmat_vjp(q: ti.math.vec4, g: ti.math.mat3) -> ti.math.vec4:
    """Gradient w.r.t. the unit quaternion q (w, x, y, z) given g = dL/dR of `quat_to_rotmat`."""
    w, x, y, z = q[0], q[1], q[2], q[3]
    return 2.0 * ti.math.vec4(
        -z * g[0, 1] + y * g[0, 2] + z * g[1, 0] - x * g[1, 2] - y * g[2, 0] + x * g[2, 1],
        y * g[0, 1] + z * g[0, 2] + y * g[1, 0] - 2.0 * x * g[1, 1] - w * g[1, 2] + z * g[2, 0]
        + w * g[2, 1] - 2.0 * x * g[2, 2],
        -2.0 * y * g[0, 0] + x * g[0, 1] + w * g[0, 2] + x * g[1, 0] + z * g[1, 2] - w * g[2, 0]
        + z * g[2, 1] - 2.0 * y * g[2, 2],
        -2.0 * z * g[0, 0] - w * g[0, 1] + x * g[0, 2] + w * g[1, 0] - 2.0 * z * g[1, 1]
        + y * g[1, 2] + x * g[2, 0] + y * g[2, 1],
    )


@ti.func
def load_vec3(a: ti.template(), i: ti.i32) -> ti.math.vec3:
    """Row i of an [N, 3] ndarray."""
    return ti.math.vec3(a[i, 0], a[i, 1], a[i, 2])


@ti.func
def load_vec4(a: ti.template(), i: ti.i32) -> ti.math.vec4:
    """Row i of an [N, 4] ndarray."""
    return ti.math.vec4(a[i, 0], a[i, 1], a[i, 2], a[i, 3])


@ti.func
def load_rotation(viewmat: ti.template()) -> ti.math.mat3:
    """The 3x3 rotation block of a 4x4 world-to-camera matrix."""
    return ti.math.mat3(
        [[viewmat[r, 0], viewmat[r, 1], viewmat[r, 2]] for r in ti.static(range(3))]
    )


@ti.func
def camera_point(means: ti.template(), viewmat: ti.template(), i: ti.i32):
    """(W, p): the world-to-camera rotation and Gaussian i's centre in camera coordinates."""
    W = load_rotation(viewmat)
    return W, W @ load_vec3(means, i) + ti.math.vec3(viewmat[0, 3], viewmat[1, 3], viewmat[2, 3])


@ti.func
def camera_covariance(quats: ti.template(), log_scales: ti.template(), W: ti.math.mat3, i: ti.i32):
    """(qn, q_norm, R, s, M, cov_cam) of Gaussian i: its normalised quaternion and the norm it had,
    rotation R, scales s, M = R diag(s), and the camera-frame covariance W M M^T W^T (Kerbl et al.
    2023, eq. 6)."""
    q = load_vec4(quats, i)
    q_norm = ti.max(q.norm(), 1e-12)
    qn = q / q_norm
    R = quat_to_rotmat(qn)
    s = ti.exp(load_vec3(log_scales, i))
    M = R @ ti.math.mat3([[s[0], 0.0, 0.0], [0.0, s[1], 0.0], [0.0, 0.0, s[2]]])
    return qn, q_norm, R, s, M, W @ (M @ M.transpose()) @ W.transpose()


@ti.func
def clamped_tan(p: ti.math.vec3, K: ti.template(), width: ti.i32, height: ti.i32, fov_clamp: ti.f32):
    """x/z and y/z clamped to fov_clamp * tan(half FOV), and whether each was inside the clamp."""
    lim_x = fov_clamp * 0.5 * width / K[0, 0]
    lim_y = fov_clamp * 0.5 * height / K[1, 1]
    x_over_z = p.x / p.z
    y_over_z = p.y / p.z
    return (
        ti.math.vec2(ti.math.clamp(x_over_z, -lim_x, lim_x), ti.math.clamp(y_over_z, -lim_y, lim_y)),
        ti.math.ivec2(ti.abs(x_over_z) <= lim_x, ti.abs(y_over_z) <= lim_y),
    )


@ti.func
def jacobian(p: ti.math.vec3, tan_xy: ti.math.vec2, K: ti.template()) -> ti.types.matrix(2, 3, ti.f32):
    """d(pixel)/d(camera point) of the pinhole projection, at the clamped direction (EWA eq. 29)."""
    fx, fy, rz = K[0, 0], K[1, 1], 1.0 / p.z
    return ti.types.matrix(2, 3, ti.f32)(
        [[fx * rz, 0.0, -fx * tan_xy.x * rz], [0.0, fy * rz, -fy * tan_xy.y * rz]]
    )


@ti.kernel
def _project_forward(
    means: F32_2D, quats: F32_2D, log_scales: F32_2D, viewmat: F32_2D, K: F32_2D,
    width: ti.i32, height: ti.i32, eps2d: ti.f32, near_plane: ti.f32, far_plane: ti.f32,
    fov_clamp: ti.f32, radius_sigmas: ti.f32, antialiased: ti.i32,
    means2d: F32_2D, conics: F32_2D, depths: F32_1D, radii: I32_1D, compensations: F32_1D,
):
    for i in range(means.shape[0]):
        W, p = camera_point(means, viewmat, i)
        depths[i] = p.z
        radii[i] = 0
        means2d[i, 0] = 0.0
        means2d[i, 1] = 0.0
        for k in ti.static(range(3)):
            conics[i, k] = 0.0
        compensations[i] = 0.0
        if near_plane < p.z < far_plane:
            qn, q_norm, R, s, M, cov_cam = camera_covariance(quats, log_scales, W, i)  # noqa: F841
            tan_xy, _ = clamped_tan(p, K, width, height, fov_clamp)
            J = jacobian(p, tan_xy, K)
            cov = J @ cov_cam @ J.transpose()
            det_orig = cov[0, 0] * cov[1, 1] - cov[0, 1] * cov[0, 1]
            a = cov[0, 0] + eps2d
            b = cov[0, 1]
            c = cov[1, 1] + eps2d
            det = a * c - b * b
            if det > 0.0:
                u = K[0, 0] * p.x / p.z + K[0, 2]
                v = K[1, 1] * p.y / p.z + K[1, 2]
                mid = 0.5 * (a + c)
                lambda_max = mid + ti.sqrt(ti.max(0.0, mid * mid - det))
                r = ti.ceil(radius_sigmas * ti.sqrt(lambda_max))
                if r > 0.0 and u + r > 0.0 and u - r < width and v + r > 0.0 and v - r < height:
                    radii[i] = ti.cast(r, ti.i32)
                    means2d[i, 0] = u
                    means2d[i, 1] = v
                    conics[i, 0] = c / det
                    conics[i, 1] = -b / det
                    conics[i, 2] = a / det
                    compensations[i] = 1.0
                    if antialiased:
                        compensations[i] = ti.sqrt(ti.max(0.0, det_orig / det))


@ti.kernel
def _project_backward(
    means: F32_2D, quats: F32_2D, log_scales: F32_2D, viewmat: F32_2D, K: F32_2D,
    width: ti.i32, height: ti.i32, eps2d: ti.f32, fov_clamp: ti.f32, antialiased: ti.i32,
    conics: F32_2D, compensations: F32_1D,
    v_means2d: F32_2D, v_conics: F32_2D, v_depths: F32_1D, v_compensations: F32_1D, visible_ids: I64_1D,
    v_means: F32_2D, v_quats: F32_2D, v_log_scales: F32_2D, v_viewmats: F32_3D, with_viewmat: ti.template(),
):
    # with_viewmat is a compile-time switch: without it the kernel is the camera-free one, so the
    # training path neither pays for the camera gradient nor changes a bit of its results.
    # Gaussian i = visible_ids[row] is read, the packed row `row` of the outputs written.
    for row in range(visible_ids.shape[0]):
        i = ti.cast(visible_ids[row], ti.i32)
        W, p = camera_point(means, viewmat, i)
        qn, q_norm, R, s, M, cov_cam = camera_covariance(quats, log_scales, W, i)
        tan_xy, inside = clamped_tan(p, K, width, height, fov_clamp)
        J = jacobian(p, tan_xy, K)

        # conic = inverse(cov): dL/dcov = -A G A, with G the symmetric gradient of A.
        A = ti.math.mat2([[conics[i, 0], conics[i, 1]], [conics[i, 1], conics[i, 2]]])
        G_A = ti.math.mat2(
            [[v_conics[i, 0], 0.5 * v_conics[i, 1]], [0.5 * v_conics[i, 1], v_conics[i, 2]]]
        )
        G_cov = -A @ G_A @ A
        comp = compensations[i]
        if antialiased and comp > 0.0:
            # d(comp^2)/dcov = (1 - comp^2) cov^-1 - eps2d det(cov^-1) I (Mip-Splatting eq. 9)
            det_A = A[0, 0] * A[1, 1] - A[0, 1] * A[0, 1]
            G_cov += (v_compensations[i] * 0.5 / comp) * (
                (1.0 - comp * comp) * A - eps2d * det_A * ti.math.mat2([[1.0, 0.0], [0.0, 1.0]])
            )
        G_cov_cam = J.transpose() @ G_cov @ J
        G_J = 2.0 * G_cov @ J @ cov_cam

        fx, fy, rz = K[0, 0], K[1, 1], 1.0 / p.z
        rz2 = rz * rz
        G_p = ti.math.vec3(
            fx * rz * v_means2d[i, 0],
            fy * rz * v_means2d[i, 1],
            -(fx * p.x * v_means2d[i, 0] + fy * p.y * v_means2d[i, 1]) * rz2 + v_depths[i],
        )
        # J02 = -fx tx / z with tx = clamp(x/z): through x only when unclamped.
        G_p.z += -fx * rz2 * G_J[0, 0] - fy * rz2 * G_J[1, 1]
        if inside.x:
            G_p.x += -fx * rz2 * G_J[0, 2]
            G_p.z += 2.0 * fx * p.x * rz2 * rz * G_J[0, 2]
        else:
            G_p.z += fx * tan_xy.x * rz2 * G_J[0, 2]
        if inside.y:
            G_p.y += -fy * rz2 * G_J[1, 2]
            G_p.z += 2.0 * fy * p.y * rz2 * rz * G_J[1, 2]
        else:
            G_p.z += fy * tan_xy.y * rz2 * G_J[1, 2]

        G_mean = W.transpose() @ G_p
        G_sigma = W.transpose() @ G_cov_cam @ W
        G_M = 2.0 * G_sigma @ M
        G_R = ti.math.mat3(0.0)
        G_s = ti.math.vec3(0.0)
        for r, c in ti.static(ti.ndrange(3, 3)):
            G_R[r, c] = G_M[r, c] * s[c]
            G_s[c] += G_M[r, c] * R[r, c]
        G_qn = rotmat_vjp(qn, G_R)
        G_q = (G_qn - qn * qn.dot(G_qn)) / q_norm
        for k in ti.static(range(3)):
            v_means[row, k] = G_mean[k]
            v_log_scales[row, k] = G_s[k] * s[k]
        for k in ti.static(range(4)):
            v_quats[row, k] = G_q[k]
        if ti.static(with_viewmat):
            # p = W x + T and cov_cam = W Sigma W^T (Sigma = M M^T, G_cov_cam symmetric):
            # dL/dW = G_p x^T + 2 G_cov_cam W Sigma, dL/dT = G_p (gsplat `covar_world_to_cam_vjp`).
            G_W = G_p.outer_product(load_vec3(means, i)) + 2.0 * G_cov_cam @ W @ (M @ M.transpose())
            for r, c in ti.static(ti.ndrange(3, 3)):
                v_viewmats[row, r, c] = G_W[r, c]
            for r in ti.static(range(3)):
                v_viewmats[row, r, 3] = G_p[r]


def visible_gaussians(radii: torch.Tensor) -> torch.Tensor:
    """[V] int64 ascending indices of the Gaussians with radius > 0, from radii [N] int32 (one host
    sync on CUDA, as the pair count of binning)."""
    return torch.nonzero(radii > 0).flatten()


def _zeros_if_none(grad: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if grad is None else grad.contiguous()


class _ProjectGaussians(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means, quats, log_scales, viewmat, K, width, height, config):
        # Taichi inspects .grad of tensors that require grad; the kernels need only the data.
        means, quats, log_scales, viewmat = means.detach(), quats.detach(), log_scales.detach(), viewmat.detach()
        n = means.shape[0]
        device = means.device
        means2d = torch.empty((n, 2), dtype=torch.float32, device=device)
        conics = torch.empty((n, 3), dtype=torch.float32, device=device)
        depths = torch.empty((n,), dtype=torch.float32, device=device)
        radii = torch.empty((n,), dtype=torch.int32, device=device)
        compensations = torch.empty((n,), dtype=torch.float32, device=device)
        if n > 0:
            _project_forward(
                means, quats, log_scales, viewmat, K, width, height, config.eps2d,
                config.near_plane, config.far_plane, config.fov_clamp, config.radius_sigmas,
                int(config.antialiased), means2d, conics, depths, radii, compensations,
            )
        visible_ids = visible_gaussians(radii)
        ctx.save_for_backward(means, quats, log_scales, viewmat, K, visible_ids, conics, compensations)
        ctx.settings = (width, height, config)
        ctx.mark_non_differentiable(radii, visible_ids)
        return means2d, conics, depths, radii, compensations, visible_ids

    @staticmethod
    def backward(ctx, v_means2d, v_conics, v_depths, _v_radii, v_compensations, _v_visible_ids):
        means, quats, log_scales, viewmat, K, visible_ids, conics, compensations = (
            t.detach() for t in ctx.saved_tensors  # saved outputs come back attached to the graph
        )
        width, height, config = ctx.settings
        v = visible_ids.shape[0]
        v_means = torch.empty((v, 3), dtype=torch.float32, device=means.device)
        v_quats = torch.empty((v, 4), dtype=torch.float32, device=means.device)
        v_log_scales = torch.empty((v, 3), dtype=torch.float32, device=means.device)
        with_viewmat = ctx.needs_input_grad[3]
        # dL/d(rows 0..2 of viewmat) of each visible Gaussian; an unread one-row placeholder when the camera
        # needs no gradient (the kernels are never handed empty arrays, see the n > 0 guards).
        v_viewmats = torch.zeros((v if with_viewmat else 1, 3, 4), dtype=torch.float32,
                                 device=means.device)
        if visible_ids.shape[0] > 0:
            _project_backward(
                means, quats, log_scales, viewmat, K, width, height, config.eps2d,
                config.fov_clamp, int(config.antialiased), conics, compensations,
                _zeros_if_none(v_means2d, means[:, :2]), _zeros_if_none(v_conics, conics),
                _zeros_if_none(v_depths, compensations), _zeros_if_none(v_compensations, compensations),
                visible_ids, v_means, v_quats, v_log_scales, v_viewmats, with_viewmat,
            )
        n = means.shape[0]
        v_viewmat = None
        if with_viewmat:  # the last row of a rigid transform is constant: zero gradient
            # summed over all N rows (zeros for the culled), the very sum of an unpacked backward
            v_viewmat = torch.cat([scatter_rows(v_viewmats, visible_ids, n).sum(0), torch.zeros_like(viewmat[3:])])
        v_means, v_quats, v_log_scales = (scatter_rows(t, visible_ids, n) for t in (v_means, v_quats, v_log_scales))
        return v_means, v_quats, v_log_scales, v_viewmat, None, None, None, None


def project_gaussians(
    means: torch.Tensor,
    quats: torch.Tensor,
    log_scales: torch.Tensor,
    viewmat: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    config: RasterizerConfig = RasterizerConfig(),
) -> Projection:
    """Project 3D Gaussians into one pinhole camera (differentiable w.r.t. means, quats, log_scales
    and viewmat).

    Args:
        means: [N, 3] float32, world-frame centres.
        quats: [N, 4] float32, rotations (w, x, y, z); normalised here, the gradient flows through
            the normalisation.
        log_scales: [N, 3] float32, log of the per-axis standard deviations (world units).
        viewmat: [4, 4] float32, world-to-camera (OpenCV axes: x right, y down, z forward). When it
            requires grad, its gradient (rows 0..2; the last row gets 0) is the sum over the visible
            Gaussians of dL/dW and dL/dT of the camera point W x + T and covariance W Sigma W^T.
        K: [3, 3] float32, pinhole intrinsics in pixels.
        width, height: image size in pixels.
        config: see `RasterizerConfig` (eps2d, near/far planes, fov_clamp, radius_sigmas, antialiased).

    Returns:
        `Projection` (means2d, conics, depths, radii, compensations, visible_ids). Gradients flow
        back from means2d, conics, depths and compensations, computed for the visible Gaussians
        only; culled Gaussians get exactly zero gradient.

    Raises:
        ValueError: a tensor has the wrong shape, dtype or device.
    """
    init_taichi()
    n = means.shape[0] if means.dim() == 2 else -1
    for name, tensor, shape in (
        ("means", means, (n, 3)), ("quats", quats, (n, 4)), ("log_scales", log_scales, (n, 3)),
        ("viewmat", viewmat, (4, 4)), ("K", K, (3, 3)),
    ):
        check_tensor(name, tensor, shape, means.device)
    return Projection(
        *_ProjectGaussians.apply(
            means.contiguous(), quats.contiguous(), log_scales.contiguous(), viewmat.contiguous(),
            K.contiguous(), int(width), int(height), config,
        )
    )
