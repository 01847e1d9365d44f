"""The rasterizer's entry point: projection -> SH colour -> tile binning -> blending."""

from typing import NamedTuple, Optional

import torch

from taichi_3dgs.backend import init_taichi
from taichi_3dgs.rasterizer.binning import bin_tiles
from taichi_3dgs.rasterizer.blending import blend_tiles
from taichi_3dgs.rasterizer.config import RasterizerConfig
from taichi_3dgs.rasterizer.ndarrays import check_tensor
from taichi_3dgs.rasterizer.projection import project_gaussians
from taichi_3dgs.rasterizer.spherical_harmonics import evaluate_sh


class RasterizeOutput(NamedTuple):
    """What `rasterize` returns.

    Attributes:
        image: [H, W, 3] float32 RGB, background composited with the final transmittance.
        alpha: [H, W] float32, 1 - final transmittance.
        depth: [H, W] float32, alpha-weighted camera z (world units) divided by alpha; 0 where
            alpha is 0. Not differentiable.
        radii: [N] int32 screen radii in pixels, 0 = culled.
        means2d: [N, 2] float32 projected centres in pixels; after `loss.backward()`,
            `means2d.grad` holds dL/dmeans2d (the view-space gradient used by densification).
        num_pairs: number of (tile, Gaussian) pairs blended (a measure of the work done).
        means2d_absgrad: with `rasterize(absgrad=True)`, [N, 2] float32, zero after the forward;
            each `loss.backward()` adds, per Gaussian, the sum over pixels of the absolute values
            (componentwise) of each pixel's contribution to dL/dmeans2d (AbsGS, Ye et al. 2024;
            gsplat's `means2d.absgrad`), so it is >= |means2d.grad| componentwise. None otherwise.
            With `inverse_depth` too, a pixel's contributions through the image and through the
            inverse-depth image are taken in absolute value separately (two blending passes).
        inverse_depth: [H, W] float32, sum_i alpha_i T_i / z_i (1 / world units; the official
            rasterizer's `invDepth`, not divided by alpha, 0 where nothing is drawn), differentiable;
            None unless `rasterize` was called with render_inverse_depth=True.
    """

    image: torch.Tensor
    alpha: torch.Tensor
    depth: torch.Tensor
    radii: torch.Tensor
    means2d: torch.Tensor
    num_pairs: int
    means2d_absgrad: Optional[torch.Tensor] = None
    inverse_depth: Optional[torch.Tensor] = None


def activate_colors(raw: torch.Tensor, color_activation: str) -> torch.Tensor:
    """RGB from the raw SH sum: max(0, raw + 0.5) ("linear", official) or sigmoid(raw)."""
    if color_activation == "linear":
        return torch.clamp_min(raw + 0.5, 0.0)
    return torch.sigmoid(raw)


def rasterize(
    means: torch.Tensor,
    quats: torch.Tensor,
    log_scales: torch.Tensor,
    opacity_logits: torch.Tensor,
    sh_coeffs: torch.Tensor,
    viewmat: torch.Tensor,
    K: torch.Tensor,
    width: int,
    height: int,
    sh_degree: int = 3,
    background: torch.Tensor | None = None,
    config: RasterizerConfig = RasterizerConfig(),
    absgrad: bool = False,
    render_inverse_depth: bool = False,
) -> RasterizeOutput:
    """Render N 3D Gaussians into one pinhole camera, differentiably.

    Semantics: docs/FORMATS.md "Rasterization semantics" (Kerbl et al. 2023 with the
    official rasterizer's constants, all in `config`). Gradients reach all five parameter tensors,
    including the paths through the projection Jacobian and the SH view direction to `means` and
    through quaternion normalisation; culled Gaussians get exactly zero gradient. When `viewmat`
    requires grad it gets dL/dviewmat too (rows 0..2; 0 for the last row): through each visible
    Gaussian's camera point R x + T, covariance R Sigma R^T and projection Jacobian, and through
    the SH view direction normalize(x - c) with the camera centre c = -R^T T (gsplat's `v_viewmats`).
    Otherwise none of it is computed.

    With `render_inverse_depth` the same binned Gaussians are blended a second time with colour
    (1 / z, 0, 0) over a black background, z the camera depth of the projection, giving the
    official rasterizer's inverse-depth image sum_i alpha_i T_i / z_i (graphdeco-inria
    diff-gaussian-rasterization `invdepths`, the depth regularisation of the 3DGS repository):
    the blend's colour gradient reaches z through -1/z^2 and the projection's depth gradient
    carries it on to `means` (and `viewmat`), while its opacity, means2d and conic gradients
    are the blend's own. The blending kernels themselves carry no depth gradient; a second pass
    costs one more blend forward and backward, so it is off unless asked for.

    Args:
        means: [N, 3] float32, world-frame centres.
        quats: [N, 4] float32, rotations (w, x, y, z), normalised internally.
        log_scales: [N, 3] float32, log per-axis standard deviation (world units).
        opacity_logits: [N] float32, opacity = sigmoid(logit).
        sh_coeffs: [N, 16, 3] float32, real SH coefficients (official order, DC first).
        viewmat: [4, 4] float32, world-to-camera [[R, T], [0, 1]] (OpenCV axes: x right, y down,
            z forward); may require grad (camera pose optimisation).
        K: [3, 3] float32, pinhole intrinsics in pixels.
        width, height: image size in pixels (any size; no cropping to tile multiples).
        sh_degree: SH bands used, 0..3.
        background: [3] float32 RGB in [0, 1], or None for black.
        config: `RasterizerConfig`.
        absgrad: also sum the absolute per-pixel gradients of means2d in the backward
            (`RasterizeOutput.means2d_absgrad`; densification with AbsGS). Costs two more
            gradient columns per Gaussian in the backward.
        render_inverse_depth: also render the differentiable `inverse_depth` image.

    Returns:
        `RasterizeOutput` (image, alpha, depth, radii, means2d, num_pairs, means2d_absgrad,
        inverse_depth).

    Raises:
        ValueError: a tensor of the wrong shape/dtype/device, a non-positive image size, or
            sh_degree outside 0..3.
    """
    init_taichi()
    device = means.device
    n = means.shape[0] if means.dim() == 2 else -1
    check_tensor("opacity_logits", opacity_logits, (n,), device)
    if background is None:
        background = torch.zeros(3, dtype=torch.float32, device=device)
    check_tensor("background", background, (3,), device)
    if int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"width, height: expected positive integers, got {width} x {height}")

    proj = project_gaussians(means, quats, log_scales, viewmat, K, width, height, config)
    means2d = proj.means2d
    if means2d.requires_grad:
        means2d.retain_grad()
    camera_center = -(viewmat[:3, :3].T @ viewmat[:3, 3])  # autograd carries the viewmat's gradient
    colors = activate_colors(evaluate_sh(sh_coeffs, means, camera_center, sh_degree, proj.visible_ids),
                             config.color_activation)
    opacities = torch.sigmoid(opacity_logits)
    if config.antialiased:  # otherwise the compensations are 1 (0 only for culled, unbinned Gaussians)
        opacities = opacities * proj.compensations
    bins = bin_tiles(means2d, proj.radii, proj.depths, width, height, config.tile_size)
    absgrad_out = torch.zeros_like(means2d) if absgrad else None
    image, alpha, depth = blend_tiles(
        means2d, proj.conics, colors, opacities, proj.depths, bins, width, height, background, config,
        absgrad_out=absgrad_out,
    )
    inverse_depth = None
    if render_inverse_depth:
        # Culled Gaussians are never blended, but their z (possibly 0) still meets the chain rule:
        # give them a finite stand-in so their zero colour gradient stays 0 (not 0 * inf).
        visible = proj.radii > 0
        inverse_z = torch.where(visible, 1.0 / torch.where(visible, proj.depths, torch.ones_like(proj.depths)), 0.0)
        zeros = torch.zeros_like(inverse_z)
        # The same absgrad accumulator: a depth loss's pull on means2d counts for densification
        # as the colour loss's does (so means2d_absgrad stays >= |means2d.grad|).
        inverse_image, _, _ = blend_tiles(
            means2d, proj.conics, torch.stack([inverse_z, zeros, zeros], dim=-1), opacities, proj.depths, bins,
            width, height, torch.zeros_like(background), config, absgrad_out=absgrad_out,
        )
        inverse_depth = inverse_image[..., 0]
    return RasterizeOutput(image, alpha, depth, proj.radii, means2d, int(bins.gaussian_ids.shape[0]), absgrad_out,
                           inverse_depth)
