"""Per-tile front-to-back alpha blending (forward) and its hand-written back-to-front replay.

Math: Kerbl et al. 2023, eq. 2-3 (C = sum_i c_i alpha_i T_i, T_i = prod_{j<i} (1 - alpha_j)),
with the official rasterizer's rules (`renderCUDA`, `renderCUDA` backward in
graphdeco-inria/diff-gaussian-rasterization): alpha = min(max_alpha, opacity * exp(-0.5 d^T conic d)),
skip alpha < alpha_threshold, stop before the Gaussian that would bring T below the
transmittance threshold, background weighted by the final T. The backward walks each pixel's list
back to front from the stored final transmittance and last contributor, recovering
T_i = T_{i+1} / (1 - alpha_i).

This module holds the autograd op and the choice of kernel layout, by architecture (both exact):
- "per_tile" (CPU, `blending_per_tile`): one thread per tile, Gaussians outer and pixels inner;
  per-(tile, Gaussian) gradient rows summed here in a fixed order (bit-for-bit reproducible).
- "per_pixel" (CUDA, Vulkan, `blending_per_pixel`): one thread per pixel, one block per tile, the
  tile's pairs staged in block shared memory; gradients added atomically, or with
  `RasterizerConfig.blend_backward = "reproducible"` summed in the block in a fixed order into one
  row per pair and then per Gaussian in a fixed order (bit-for-bit reproducible, no atomics).
Both read the per-pair payload of `blending_payload`, gathered here in sorted order.

With an `absgrad_out` accumulator the backward also sums, per Gaussian, the absolute value of each
pixel's contribution to dL/dmeans2d (componentwise), the statistic of AbsGS (Ye et al. 2024,
"AbsGS: Recovering Fine Details for 3D Gaussian Splatting"; gsplat's `absgrad`): the
plain gradient sums the pixels' contributions, whose signs cancel across a Gaussian that covers
a detailed area. Both layouts compile that variant separately, so without it nothing changes.
"""

import torch

from taichi_3dgs.backend import GPU_ARCHS, init_taichi
from taichi_3dgs.rasterizer.binning import TileBins
from taichi_3dgs.rasterizer.blending_payload import (
    ABS_U, ABS_V, ABSGRAD_SIZE, GRAD_SIZE, PAYLOAD_SIZE, gather_payload,
)
from taichi_3dgs.rasterizer.blending_per_pixel import (
    backward_per_pixel, backward_per_pixel_rows, forward_per_pixel, sum_pair_rows,
)
from taichi_3dgs.rasterizer.blending_per_tile import backward_per_tile, forward_per_tile
from taichi_3dgs.rasterizer.config import RasterizerConfig
from taichi_3dgs.rasterizer.ndarrays import check_tensor

KERNELS = ("auto", "per_tile", "per_pixel")
# Largest tile of the reproducible per-pixel backward: its shared-memory batches must fit in 48 KB.
MAX_REPRODUCIBLE_TILE = 16


def _layout(kernel: str, config: RasterizerConfig) -> str:
    if kernel not in KERNELS:
        raise ValueError(f"kernel: expected one of {KERNELS}, got {kernel!r}")
    arch = init_taichi()
    if kernel == "auto":
        kernel = "per_pixel" if arch in GPU_ARCHS else "per_tile"
    if kernel == "per_pixel" and arch not in GPU_ARCHS:
        raise ValueError(f"kernel 'per_pixel' needs block shared memory, which Taichi has on {GPU_ARCHS}, "
                         f"not on {arch!r}")
    if kernel == "per_pixel" and config.blend_backward == "reproducible" and config.tile_size > MAX_REPRODUCIBLE_TILE:
        raise ValueError(f"RasterizerConfig.blend_backward 'reproducible' on {arch!r} needs tile_size <= "
                         f"{MAX_REPRODUCIBLE_TILE}, got {config.tile_size}")
    return kernel


class _BlendTiles(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, depths, bins, background, width, height, config, layout,
                absgrad_out):
        # Taichi inspects .grad of tensors that require grad; the kernels need only the data.
        means2d, conics, colors, opacities, depths = (
            t.detach() for t in (means2d, conics, colors, opacities, depths)
        )
        device = means2d.device
        ids = bins.gaussian_ids
        payload = torch.empty((max(ids.shape[0], 1), PAYLOAD_SIZE), dtype=torch.float32, device=device)
        if ids.shape[0] > 0:
            gather_payload(ids, means2d, conics, colors, opacities, depths, config.alpha_threshold,
                            height, payload)
        image = torch.empty((height, width, 3), dtype=torch.float32, device=device)
        transmittance = torch.empty((height, width), dtype=torch.float32, device=device)
        depth = torch.empty((height, width), dtype=torch.float32, device=device)
        last = torch.empty((height, width), dtype=torch.int32, device=device)
        kernel = forward_per_tile if layout == "per_tile" else forward_per_pixel
        kernel(payload, bins.tile_ranges, background, width, height, bins.tiles_x, config.tile_size,
               config.alpha_threshold, config.max_alpha, config.transmittance_threshold,
               image, transmittance, depth, last)
        ctx.save_for_backward(ids, payload, bins.tile_ranges, background, transmittance, last, bins.pair_order,
                              bins.pair_ends)
        ctx.settings = (means2d.shape[0], bins.tiles_x, width, height, config, layout)
        # Not saved for backward: the backward adds to it in place, as autograd adds to .grad.
        ctx.absgrad_out = absgrad_out
        ctx.mark_non_differentiable(depth)
        return image, 1.0 - transmittance, depth

    @staticmethod
    def backward(ctx, v_image, v_alpha, _v_depth):
        ids, payload, tile_ranges, background, transmittance, last, pair_order, pair_ends = ctx.saved_tensors
        n, tiles_x, width, height, config, layout = ctx.settings
        device = payload.device
        v_image = torch.zeros_like(transmittance).unsqueeze(-1).expand(-1, -1, 3).contiguous() \
            if v_image is None else v_image.contiguous()
        v_alpha = torch.zeros_like(transmittance) if v_alpha is None else v_alpha.contiguous()
        absgrad = ctx.absgrad_out is not None
        grad_size = ABSGRAD_SIZE if absgrad else GRAD_SIZE
        grads = torch.zeros((n, grad_size), dtype=torch.float32, device=device)
        args = (payload, tile_ranges, background, width, height, tiles_x, config.tile_size,
                config.alpha_threshold, config.max_alpha, transmittance, last, v_image, v_alpha, absgrad)
        if ids.shape[0] > 0 and layout == "per_tile":
            # One row per pair, summed per Gaussian in a fixed order: bit-for-bit reproducible
            # training on the CPU (atomic float adds would depend on thread timing).
            pair_grads = torch.empty((ids.shape[0], grad_size), dtype=torch.float32, device=device)
            backward_per_tile(*args, pair_grads)
            grads.index_add_(0, ids.long(), pair_grads)  # int64: torch's int32 path is 5x slower
        elif ids.shape[0] > 0 and config.blend_backward == "reproducible":
            pair_rows = torch.empty((ids.shape[0], grad_size), dtype=torch.float32, device=device)
            backward_per_pixel_rows(*args, pair_order, pair_rows)
            sum_pair_rows(pair_rows, pair_ends, grads)
        elif ids.shape[0] > 0:
            backward_per_pixel(*args, ids, grads)
        v_means2d = grads[:, 0:2]
        v_conics = grads[:, 2:5]
        v_opacities = grads[:, 5]
        v_colors = grads[:, 6:9]
        if absgrad:
            ctx.absgrad_out += grads[:, [ABS_U, ABS_V]]
        return v_means2d, v_conics, v_colors, v_opacities, None, None, None, None, None, None, None, None


def blend_tiles(
    means2d: torch.Tensor,
    conics: torch.Tensor,
    colors: torch.Tensor,
    opacities: torch.Tensor,
    depths: torch.Tensor,
    bins: TileBins,
    width: int,
    height: int,
    background: torch.Tensor,
    config: RasterizerConfig = RasterizerConfig(),
    kernel: str = "auto",
    absgrad_out: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Alpha-blend the binned Gaussians front to back into an image.

    Differentiable w.r.t. means2d, conics, colors and opacities (not depths: the depth image is
    an output for inspection, not for losses).

    Args:
        means2d: [N, 2] float32, centres in pixels (pixel (x, y) has its centre at (x+0.5, y+0.5)).
        conics: [N, 3] float32, (a, b, c) of the inverse 2D covariance, 1/px^2.
        colors: [N, 3] float32, activated RGB.
        opacities: [N] float32 in [0, 1].
        depths: [N] float32, camera z (world units).
        bins: `TileBins` from `bin_tiles` for the same Gaussians and image size.
        width, height: image size in pixels.
        background: [3] float32 RGB, weighted by the final transmittance.
        config: tile_size, alpha_threshold, max_alpha, transmittance_threshold and (per_pixel) blend_backward
            are used.
        kernel: "auto" (per_tile on CPU, per_pixel on CUDA and Vulkan), "per_tile" or "per_pixel".
        absgrad_out: None, or a float32 [N, 2] tensor on the device of means2d, to which each
            backward pass adds, per Gaussian, the sum over pixels of (|dL_p/du|, |dL_p/dv|),
            dL_p/d(u, v) being pixel p's contribution to dL/dmeans2d (AbsGS; gsplat's
            means2d.absgrad). It accumulates like .grad: zero it to restart.

    Returns:
        (image [H, W, 3], alpha [H, W] = 1 - final transmittance, depth [H, W] = alpha-weighted
        camera z normalised by alpha, 0 where alpha is 0), all float32.

    Raises:
        ValueError: unknown `kernel`, "per_pixel" on ti.cpu (which has no block shared memory),
            blend_backward "reproducible" with "per_pixel" and a tile_size over 16, or an
            `absgrad_out` that is not a float32 [N, 2] tensor on the device of means2d.
    """
    layout = _layout(kernel, config)
    if absgrad_out is not None:
        check_tensor("absgrad_out", absgrad_out, (means2d.shape[0], 2), means2d.device)
    return _BlendTiles.apply(
        means2d.contiguous(), conics.contiguous(), colors.contiguous(), opacities.contiguous(),
        depths.contiguous(), bins, background.contiguous(), int(width), int(height), config, layout, absgrad_out,
    )
