"""Independent float64 reference of the taichi_3dgs rasterizer forward, differentiable by autograd.

This is the oracle the rasterizer tests compare against. It shares no code with
`taichi_3dgs.rasterizer`: the 3D covariance, the world-to-camera transform and the spherical
harmonics are gsplat's pure-torch functions (`gsplat.cuda._torch_impl`), the perspective Jacobian,
the radius rule and the compositing are written here from docs/FORMATS.md
("Rasterization semantics"), which follows the official 3DGS rasterizer
(graphdeco-inria/diff-gaussian-rasterization, forward.cu `computeCov2D`, `preprocessCUDA`,
`renderCUDA`):

- J of the perspective projection with x/z and y/z clamped to +-1.3 tan_fov, tan_fovx = 0.5 W / fx
  (1.3 and the 3 of the radius are the config's fov_clamp and radius_sigmas)
  (gsplat's `_persp_proj` clamps asymmetrically around (cx, cy), so it is not used here; with
  cx = W/2, cy = H/2 the two agree, which the projection tests check);
- eps2d on the diagonal of the 2D covariance, Mip-Splatting compensation when antialiased;
- radius r = ceil(3 sqrt(lambda_max)) of the dilated covariance; culled (radius 0) when
  z <= near, z >= far, det <= 0 or the square [u-r, u+r] x [v-r, v+r] misses the image;
- a Gaussian touches tiles floor((u-r)/T) .. ceil((u+r)/T)-1 (clamped to the grid), same for v;
- per pixel (centre at +0.5), front to back over the depth-sorted Gaussians touching its tile:
  alpha = min(max_alpha, opacity exp(-0.5 d^T conic d)), skipped when below alpha_threshold,
  stop before the Gaussian that would bring T below transmittance_threshold.

The compositing is dense per tile (pixels x Gaussians tensors) and runs one tile at a time, so a
few thousand Gaussians at ~160x100 px stay fast and small. Everything is computed in float64 from
the (float32) inputs; gradients flow to every input through torch autograd, with zero gradient
through the hard decisions (culling, tile membership, alpha skip, early stop, max_alpha clamp).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from gsplat.cuda._torch_impl import _quat_scale_to_covar_preci, _spherical_harmonics, _world_to_cam

# The reference runs many small float64 ops; with two OpenMP threads on a shared 2-core machine
# each op pays a thread hand-off that makes it 10-50x slower than on one thread. The rasterizer's
# Taichi kernels keep their own thread pool, so only the torch ops of the test process run on one thread.
torch.set_num_threads(1)


@dataclass
class ReferenceProjection:
    """Per-Gaussian screen-space quantities (float64 unless noted), N Gaussians.

    means2d [N, 2] pixels; conics [N, 3] (a, b, c) of the inverse dilated 2D covariance;
    depths [N] camera z; radii [N] int64 (0 = culled); compensations [N] (Mip-Splatting factor,
    computed whether or not the config is antialiased); cov2d [N, 2, 2] dilated covariance.
    Entries of culled Gaussians are finite but meaningless.
    """

    means2d: torch.Tensor
    conics: torch.Tensor
    depths: torch.Tensor
    radii: torch.Tensor
    compensations: torch.Tensor
    cov2d: torch.Tensor


@dataclass
class ReferenceOutput:
    """Rendered outputs of `rasterize_reference` (float64).

    image [H, W, 3]; alpha [H, W] = 1 - T_final; depth [H, W] (alpha-weighted camera z / alpha,
    0 where alpha is 0); inverse_depth [H, W] = sum_i alpha_i T_i / z_i (not divided by alpha,
    differentiable: the official rasterizer's invdepths); radii [N] int64; means2d [N, 2] (a
    non-leaf tensor with retained grad: after backward its .grad is the view-space gradient);
    n_pairs: number of (tile, Gaussian) pairs; projection: the `ReferenceProjection` used; pixel_means2d: per tile (ids [K], copies
    [P, K, 2]) of the means2d of the tile's K Gaussians, one copy per pixel of the tile, through
    which that pixel reads them (with retained grad when means2d requires grad: after backward
    copies.grad[p, k] is pixel p's own contribution to dL/dmeans2d[ids[k]]; see
    `means2d_absgrad_reference`).
    """

    image: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    inverse_depth: torch.Tensor
    radii: torch.Tensor
    means2d: torch.Tensor
    n_pairs: int
    projection: ReferenceProjection
    pixel_means2d: list


def camera_center(viewmat: torch.Tensor) -> torch.Tensor:
    """World position [3] of the camera of a world-to-camera `viewmat` [4, 4]: -R^T t."""
    return -viewmat[:3, :3].T @ viewmat[:3, 3]


def project_reference(means, quats, log_scales, viewmat, K, width, height, config) -> ReferenceProjection:
    """EWA projection of N Gaussians in float64 (see the module docstring for the rules).

    Args:
        means [N, 3], quats [N, 4] (wxyz, any norm), log_scales [N, 3]: world-frame Gaussians.
        viewmat [4, 4] world-to-camera (OpenCV axes); K [3, 3] pixels; width, height: image size.
        config: any object with eps2d, near_plane, far_plane, fov_clamp (1.3: x/z, y/z clamp for J
            in units of tan of the half field of view) and radius_sigmas (3) (e.g. a RasterizerConfig).
    """
    means, quats, log_scales = means.double(), quats.double(), log_scales.double()
    viewmat, K = viewmat.double(), K.double()
    covars, _ = _quat_scale_to_covar_preci(quats, torch.exp(log_scales), compute_preci=False)
    means_c, covars_c = _world_to_cam(means, covars, viewmat[None])
    means_c, covars_c = means_c[0], covars_c[0]
    x, y, z = means_c.unbind(-1)
    in_depth = (z > config.near_plane) & (z < config.far_plane)
    # Culled Gaussians still flow through the graph: keep every value finite so that their zero
    # upstream gradient never meets an inf local derivative (0 * inf = nan).
    z = torch.where(in_depth, z, torch.ones_like(z))
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    lim_x = config.fov_clamp * 0.5 * width / fx
    lim_y = config.fov_clamp * 0.5 * height / fy
    tx = z * torch.clamp(x / z, -lim_x, lim_x)
    ty = z * torch.clamp(y / z, -lim_y, lim_y)
    zeros = torch.zeros_like(z)
    J = torch.stack([fx / z, zeros, -fx * tx / z**2, zeros, fy / z, -fy * ty / z**2], -1).reshape(-1, 2, 3)
    cov2d_raw = J @ covars_c @ J.transpose(-1, -2)
    cov2d = cov2d_raw + config.eps2d * torch.eye(2, dtype=torch.float64)
    det_raw = cov2d_raw[:, 0, 0] * cov2d_raw[:, 1, 1] - cov2d_raw[:, 0, 1] * cov2d_raw[:, 1, 0]
    det = cov2d[:, 0, 0] * cov2d[:, 1, 1] - cov2d[:, 0, 1] * cov2d[:, 1, 0]
    positive = det > 0
    det_safe = torch.where(positive, det, torch.ones_like(det))
    conics = torch.stack([cov2d[:, 1, 1], -0.5 * (cov2d[:, 0, 1] + cov2d[:, 1, 0]), cov2d[:, 0, 0]], -1)
    conics = conics / det_safe[:, None]
    compensations = torch.sqrt(torch.clamp(det_raw / det_safe, min=0.0))
    means2d = torch.stack([fx * x / z + cx, fy * y / z + cy], -1)

    with torch.no_grad():
        mid = 0.5 * (cov2d[:, 0, 0] + cov2d[:, 1, 1])
        lambda_max = mid + torch.sqrt(torch.clamp(mid * mid - det, min=0.0))
        radii = torch.ceil(config.radius_sigmas * torch.sqrt(lambda_max)).long()
        u, v = means2d[:, 0], means2d[:, 1]
        outside = (u + radii <= 0) | (u - radii >= width) | (v + radii <= 0) | (v - radii >= height)
        radii = torch.where(in_depth & positive & ~outside, radii, torch.zeros_like(radii))
    return ReferenceProjection(means2d, conics, means_c[:, 2], radii, compensations, cov2d)


def sh_reference(sh_coeffs, means, center, sh_degree) -> torch.Tensor:
    """Raw SH colour [N, 3] (float64): sum_k c_k Y_k(normalize(mean - center)), via gsplat's
    `_spherical_harmonics` (the official code's basis), no +0.5 and no activation."""
    dirs = means.double() - center.double()
    return _spherical_harmonics(sh_degree, dirs, sh_coeffs.double())


def centred(scene):
    """The scene with cx = W/2, cy = H/2, where gsplat's asymmetric J clamp equals the official one."""
    K = scene["K"].clone()
    K[0, 2], K[1, 2] = 0.5 * scene["width"], 0.5 * scene["height"]
    return {**scene, "K": K}


def tile_ranges(means2d, radii, width, height, tile_size):
    """Tile rectangle each Gaussian touches: (x_min, x_max, y_min, y_max), max exclusive, int64 [N].

    x tiles floor((u - r) / T) .. ceil((u + r) / T) - 1 clamped to the grid, same for y; empty
    (min == max) for culled Gaussians.
    """
    tiles_x = (width + tile_size - 1) // tile_size
    tiles_y = (height + tile_size - 1) // tile_size
    u, v = means2d[:, 0].detach(), means2d[:, 1].detach()
    r = radii.to(u.dtype)
    x_min = torch.floor((u - r) / tile_size).long().clamp(0, tiles_x)
    x_max = torch.ceil((u + r) / tile_size).long().clamp(0, tiles_x)
    y_min = torch.floor((v - r) / tile_size).long().clamp(0, tiles_y)
    y_max = torch.ceil((v + r) / tile_size).long().clamp(0, tiles_y)
    culled = radii <= 0
    x_max = torch.where(culled, x_min, x_max)
    y_max = torch.where(culled, y_min, y_max)
    return x_min, x_max, y_min, y_max


def rasterize_reference(
    means, quats, log_scales, opacity_logits, sh_coeffs, viewmat, K, width, height,
    sh_degree=3, background=None, config=None,
) -> ReferenceOutput:
    """Dense float64 forward of the whole rasterizer; same arguments as `taichi_3dgs.rasterize`.

    config: an object with the RasterizerConfig fields (tile_size, eps2d, near_plane, far_plane,
    fov_clamp, radius_sigmas, alpha_threshold, max_alpha, transmittance_threshold,
    color_activation, antialiased).
    """
    proj = project_reference(means, quats, log_scales, viewmat, K, width, height, config)
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()
    raw = sh_reference(sh_coeffs, means, camera_center(viewmat.double()), sh_degree)
    if config.color_activation == "linear":
        colors = torch.clamp(raw + 0.5, min=0.0)
    elif config.color_activation == "sigmoid":
        colors = torch.sigmoid(raw)
    else:
        raise ValueError(f"unknown color_activation {config.color_activation!r}")
    opacities = torch.sigmoid(opacity_logits.double())
    if config.antialiased:
        opacities = opacities * proj.compensations
    bg = torch.zeros(3, dtype=torch.float64) if background is None else background.double()

    ts = config.tile_size
    tiles_x, tiles_y = (width + ts - 1) // ts, (height + ts - 1) // ts
    x_min, x_max, y_min, y_max = tile_ranges(means2d, proj.radii, width, height, ts)
    order = torch.argsort(proj.depths.detach(), stable=True)
    n_pairs = int(((x_max - x_min) * (y_max - y_min)).sum())

    tile_images, tile_alphas, tile_depths, tile_inverse_depths, tile_pixels, pixel_means2d = [], [], [], [], [], []
    for ty in range(tiles_y):
        for tx in range(tiles_x):
            xs = torch.arange(tx * ts, min(width, (tx + 1) * ts))
            ys = torch.arange(ty * ts, min(height, (ty + 1) * ts))
            py, px = torch.meshgrid(ys, xs, indexing="ij")
            px, py = px.reshape(-1), py.reshape(-1)
            tile_pixels.append(py * width + px)
            touches = (x_min[order] <= tx) & (tx < x_max[order]) & (y_min[order] <= ty) & (ty < y_max[order])
            ids = order[touches]
            if len(ids) == 0:
                n_pix = len(px)
                tile_images.append(bg.expand(n_pix, 3))
                tile_alphas.append(torch.zeros(n_pix, dtype=torch.float64))
                tile_depths.append(torch.zeros(n_pix, dtype=torch.float64))
                tile_inverse_depths.append(torch.zeros(n_pix, dtype=torch.float64))
                continue
            # One copy of the Gaussians' means2d per pixel: the copies' gradients separate the
            # pixels' contributions, which autograd would otherwise sum into means2d.grad.
            copies = means2d[ids][None].repeat(len(px), 1, 1)
            if copies.requires_grad:
                copies.retain_grad()
            pixel_means2d.append((ids, copies))
            dx = (px.double() + 0.5)[:, None] - copies[..., 0]
            dy = (py.double() + 0.5)[:, None] - copies[..., 1]
            a, b, c = proj.conics[ids].unbind(-1)
            power = -0.5 * (a * dx * dx + c * dy * dy) - b * dx * dy
            alpha = torch.clamp(opacities[ids] * torch.exp(power), max=config.max_alpha)
            alpha = torch.where(alpha >= config.alpha_threshold, alpha, torch.zeros_like(alpha))
            with torch.no_grad():
                # T after each Gaussian only decreases, so "stop before the Gaussian that would
                # bring T below the threshold" keeps exactly the prefix where it stays above.
                keep = torch.cumprod(1.0 - alpha, dim=1) >= config.transmittance_threshold
            alpha = torch.where(keep, alpha, torch.zeros_like(alpha))
            one_minus = 1.0 - alpha
            trans_after = torch.cumprod(one_minus, dim=1)
            trans_before = torch.cat([torch.ones_like(trans_after[:, :1]), trans_after[:, :-1]], dim=1)
            weights = alpha * trans_before
            t_final = trans_after[:, -1]
            tile_images.append(weights @ colors[ids] + t_final[:, None] * bg)
            acc = 1.0 - t_final
            tile_alphas.append(acc)
            tile_inverse_depths.append(weights @ (1.0 / proj.depths[ids]))
            with torch.no_grad():
                depth_sum = weights @ proj.depths[ids]
                tile_depths.append(torch.where(acc > 0, depth_sum / torch.where(acc > 0, acc, 1.0), 0.0))
    inverse = torch.empty(width * height, dtype=torch.long)
    inverse[torch.cat(tile_pixels)] = torch.arange(width * height)
    image = torch.cat(tile_images)[inverse].reshape(height, width, 3)
    alpha = torch.cat(tile_alphas)[inverse].reshape(height, width)
    depth = torch.cat(tile_depths)[inverse].reshape(height, width)
    inverse_depth = torch.cat(tile_inverse_depths)[inverse].reshape(height, width)
    return ReferenceOutput(image, alpha, depth, inverse_depth, proj.radii, means2d, n_pairs, proj, pixel_means2d)


def means2d_absgrad_reference(out: ReferenceOutput) -> torch.Tensor:
    """[N, 2] float64: per Gaussian, the sum over pixels of |pixel p's contribution to
    dL/dmeans2d| (componentwise), from the per-pixel copies of `out` after backward (AbsGS,
    Ye et al. 2024; gsplat's means2d.absgrad)."""
    absgrad = torch.zeros(out.means2d.shape, dtype=torch.float64)
    for ids, copies in out.pixel_means2d:
        if copies.grad is not None:
            absgrad.index_add_(0, ids, copies.grad.abs().sum(dim=0))
    return absgrad


# --------------------------------------------------------------------------------------------
# Test scenes


def look_at_viewmat(eye, target, up=(0.0, -1.0, 0.0)) -> torch.Tensor:
    """World-to-camera [4, 4] float32 of an OpenCV camera (x right, y down, z forward) at `eye`
    looking at `target`; `up` is the world direction that appears upwards (-y in the image)."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, -up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    R = np.stack([x, y, z])  # rows: camera axes in world coordinates
    viewmat = np.eye(4)
    viewmat[:3, :3] = R
    viewmat[:3, 3] = -R @ eye
    return torch.tensor(viewmat, dtype=torch.float32)


def random_scene(n, width, height, seed, fx_over_width=0.9, depth_range=(2.0, 6.0), log_scale_range=(-3.5, -1.5)):
    """A random float32 scene in front of a look-at camera; centres up to 1.5x the half field of
    view off-axis, so some lie beyond the 1.3x J clamp and some are culled.

    Returns a dict with means [N,3], quats [N,4] (unnormalised), log_scales [N,3],
    opacity_logits [N], sh_coeffs [N,16,3], viewmat [4,4], K [3,3] (cx, cy at the image centre
    plus a small offset), width, height.
    """
    g = torch.Generator().manual_seed(seed)
    viewmat = look_at_viewmat(eye=(0.3, -0.5, -4.0), target=(0.0, 0.1, 0.0))
    fx = fx_over_width * width
    fy = fx * 1.05
    K = torch.tensor([[fx, 0.0, 0.5 * width + 1.3], [0.0, fy, 0.5 * height - 0.7], [0.0, 0.0, 1.0]])
    z = torch.empty(n).uniform_(*depth_range, generator=g)
    xz = torch.empty(n).uniform_(-1.5, 1.5, generator=g) * 0.5 * width / fx
    yz = torch.empty(n).uniform_(-1.5, 1.5, generator=g) * 0.5 * height / fy
    cam = torch.stack([xz * z, yz * z, z], -1).double()
    R, t = viewmat[:3, :3].double(), viewmat[:3, 3].double()
    means = ((cam - t) @ R).float()
    quats = torch.randn(n, 4, generator=g) * torch.empty(n, 1).uniform_(0.5, 2.0, generator=g)
    log_scales = torch.empty(n, 3).uniform_(*log_scale_range, generator=g)
    opacity_logits = torch.logit(torch.empty(n).uniform_(0.05, 0.98, generator=g))
    sh_coeffs = torch.randn(n, 16, 3, generator=g) * 0.15
    sh_coeffs[:, 0] = torch.randn(n, 3, generator=g) * 0.8
    return dict(means=means, quats=quats, log_scales=log_scales, opacity_logits=opacity_logits,
                sh_coeffs=sh_coeffs, viewmat=viewmat, K=K, width=width, height=height)


def scene_args(scene):
    """The positional arguments of `rasterize` / `rasterize_reference` for a scene dict."""
    return (scene["means"], scene["quats"], scene["log_scales"], scene["opacity_logits"], scene["sh_coeffs"],
            scene["viewmat"], scene["K"], scene["width"], scene["height"])


PARAMETER_NAMES = ("means", "quats", "log_scales", "opacity_logits", "sh_coeffs")

__all__ = [
    "ReferenceProjection", "ReferenceOutput", "camera_center", "centred", "project_reference", "sh_reference",
    "tile_ranges", "rasterize_reference", "means2d_absgrad_reference", "look_at_viewmat", "random_scene",
    "scene_args", "PARAMETER_NAMES",
]
