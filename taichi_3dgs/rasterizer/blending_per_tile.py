"""The CPU blending layout "per_tile": one thread per tile (forward and back-to-front backward).

Gaussians outer and pixels inner, each Gaussian visiting only the pixels of its opacity-aware
ellipse (where alpha can reach alpha_threshold), row by row; the tile's per-pixel state
(transmittance, colour, replay state, incoming gradients) lives in a stack array, written to memory
once (half the time of updating the output tensors in place); the tile stops when all its pixels
are saturated. The backward sums a Gaussian's gradient over the tile's pixels in registers and
writes it once per (tile, Gaussian) pair; the caller sums the pairs per Gaussian in a fixed order,
so CPU training is bit-for-bit reproducible. Math: `taichi_3dgs.rasterizer.blending`.
"""

import taichi as ti

from taichi_3dgs.rasterizer.blending_payload import (
    ABS_U, ABS_V, CONIC_A, CONIC_B, CONIC_C, DEPTH, EXTENT, GRAD_SIZE, OPACITY, RED, U, V, Y_HI, Y_LO,
    gaussian_at, load_pair, pair_gradient, tile_bounds,
)
from taichi_3dgs.rasterizer.ndarrays import F32_1D, F32_2D, F32_3D, I32_2D

# Columns of the per-tile replay state of the backward.
T_NOW, T_FINAL, V_ALPHA, V_RED, BEHIND_RED = 0, 1, 2, 3, 6
REPLAY_SIZE = 9


@ti.func
def row_range(payload: ti.template(), j: ti.i32, y0: ti.i32, y1: ti.i32):
    """Rows [ya, yb) of the tile rows [y0, y1) that pair j's ellipse reaches."""
    ya = ti.max(y0, ti.cast(ti.floor(payload[j, Y_LO]), ti.i32))
    yb = ti.min(y1, ti.cast(ti.ceil(payload[j, Y_HI]), ti.i32) + 1)
    return ya, yb


@ti.func
def column_span(pair: ti.template(), y: ti.i32, x0: ti.i32, x1: ti.i32):
    """Columns [xa, xb) of [x0, x1) whose pixel centres in row y lie inside the pair's ellipse.

    Solves a dx^2 + 2 b dx dy + c dy^2 <= q for dx at the row's dy (a > 0 for a valid conic).
    """
    a, b, c = pair[CONIC_A], pair[CONIC_B], pair[CONIC_C]
    dy = y + 0.5 - pair[V]
    disc = a * pair[EXTENT] - (a * c - b * b) * dy * dy
    xa, xb = x0, x0
    if disc >= 0.0:
        root = ti.sqrt(disc)
        lo = ti.math.clamp(pair[U] + (-b * dy - root) / a - 0.5, x0 - 1.0, x1 + 1.0)
        hi = ti.math.clamp(pair[U] + (-b * dy + root) / a - 0.5, x0 - 1.0, x1 + 1.0)
        xa = ti.max(x0, ti.cast(ti.floor(lo), ti.i32))
        xb = ti.min(x1, ti.cast(ti.ceil(hi), ti.i32) + 1)
    return xa, xb


@ti.kernel
def forward_per_tile(
    payload: F32_2D, tile_ranges: I32_2D, background: F32_1D, width: ti.i32, height: ti.i32,
    tiles_x: ti.i32, tile_size: ti.template(), alpha_threshold: ti.f32, max_alpha: ti.f32,
    transmittance_threshold: ti.f32,
    image: F32_3D, transmittance: F32_2D, depth: F32_2D, last: I32_2D,
):
    """Blend the pairs of every tile front to back (one thread per tile).

    payload [P, PAYLOAD_SIZE] (`blending_payload`); tile_ranges [tiles, 2] int32: each tile's
    [start, end) in the payload; background [3]. Writes image [H, W, 3], the final transmittance
    [H, W], depth [H, W] (alpha-weighted z over alpha, 0 where alpha is 0) and last [H, W] int32:
    one past the payload row of each pixel's last contributor (0: none).
    """
    ti.loop_config(block_dim=1)
    for t in range(tile_ranges.shape[0]):
        x0, x1, y0, y1 = tile_bounds(t, tiles_x, tile_size, width, height)
        # The tile's running state lives in registers/stack, written to the outputs once.
        T_tile = ti.Vector([1.0] * (tile_size * tile_size), ti.f32)
        rgbd_tile = ti.Vector([0.0] * (4 * tile_size * tile_size), ti.f32)
        last_tile = ti.Vector([0] * (tile_size * tile_size), ti.i32)
        active = (x1 - x0) * (y1 - y0)
        j = tile_ranges[t, 0]
        while j < tile_ranges[t, 1] and active > 0:
            ya, yb = row_range(payload, j, y0, y1)
            pair = load_pair(payload, j)
            for y in range(ya, yb):
                xa, xb = column_span(pair, y, x0, x1)
                for x in range(xa, xb):
                    p = (y - y0) * tile_size + (x - x0)
                    T = T_tile[p]
                    if T > 0.0:  # saturated pixels hold -T until the tile is finished
                        g, _, _ = gaussian_at(pair, x, y)
                        alpha = ti.min(max_alpha, pair[OPACITY] * g)
                        if alpha >= alpha_threshold:
                            next_T = T * (1.0 - alpha)
                            if next_T < transmittance_threshold:
                                T_tile[p] = -T
                                active -= 1
                            else:
                                w = alpha * T
                                for ch in ti.static(range(3)):
                                    rgbd_tile[4 * p + ch] += w * pair[RED + ch]
                                rgbd_tile[4 * p + 3] += w * pair[DEPTH]
                                T_tile[p] = next_T
                                last_tile[p] = j + 1
            j += 1
        for y, x in ti.ndrange((y0, y1), (x0, x1)):
            p = (y - y0) * tile_size + (x - x0)
            T = ti.abs(T_tile[p])
            transmittance[y, x] = T
            for ch in ti.static(range(3)):
                image[y, x, ch] = rgbd_tile[4 * p + ch] + T * background[ch]
            depth[y, x] = rgbd_tile[4 * p + 3] / (1.0 - T) if T < 1.0 else 0.0
            last[y, x] = last_tile[p]


@ti.func
def replay_pixel(
    pair: ti.template(), x: ti.i32, y: ti.i32, p: ti.i32, alpha_threshold: ti.f32,
    max_alpha: ti.f32, background: ti.template(), tile: ti.template(),
) -> ti.types.vector(GRAD_SIZE, ti.f32):
    """One back-to-front step at pixel (x, y) (index p in the tile): the pair's gradient there
    (u, v, conic, opacity, rgb), moving the pixel's replay state in `tile` past the pair.

    dC/dalpha_i = c_i T_i - (sum_{k>i} c_k alpha_k T_k + T_final background) / (1 - alpha_i),
    dalpha_out/dalpha_i = T_final / (1 - alpha_i).
    """
    grad = ti.types.vector(GRAD_SIZE, ti.f32)(0.0)
    g, dx, dy = gaussian_at(pair, x, y)
    alpha = ti.min(max_alpha, pair[OPACITY] * g)
    if alpha >= alpha_threshold:
        one_minus = 1.0 - alpha
        T = tile[p, T_NOW] / one_minus
        T_final = tile[p, T_FINAL]
        v_alpha = tile[p, V_ALPHA] * T_final / one_minus
        for ch in ti.static(range(3)):
            v_c = tile[p, V_RED + ch]
            color = pair[RED + ch]
            grad[6 + ch] = alpha * T * v_c
            v_alpha += v_c * (color * T - (tile[p, BEHIND_RED + ch] + T_final * background[ch]) / one_minus)
            tile[p, BEHIND_RED + ch] += color * alpha * T
        tile[p, T_NOW] = T
        geometry = pair_gradient(pair, g, dx, dy, v_alpha, max_alpha)
        for k in ti.static(range(6)):
            grad[k] = geometry[k]
    return grad


@ti.kernel
def backward_per_tile(
    payload: F32_2D, tile_ranges: I32_2D, background: F32_1D, width: ti.i32, height: ti.i32,
    tiles_x: ti.i32, tile_size: ti.template(), alpha_threshold: ti.f32, max_alpha: ti.f32,
    transmittance: F32_2D, last: I32_2D, v_image: F32_3D, v_alpha_out: F32_2D, absgrad: ti.template(),
    pair_grads: F32_2D,
):
    """Replay every pixel back to front from its final transmittance and last contributor (one
    thread per tile).

    Inputs as `forward_per_tile`, with its outputs transmittance and last and the incoming
    gradients v_image [H, W, 3] and v_alpha_out [H, W]. Writes pair_grads [P, GRAD_SIZE]: row j is
    the gradient of pair j (u, v, conic a, b, c, opacity, r, g, b) summed over the tile's pixels;
    with absgrad (a compile-time flag) pair_grads is [P, ABSGRAD_SIZE] and columns ABS_U, ABS_V
    also hold the sums over the tile's pixels of |dL/du| and |dL/dv| of each pixel.
    """
    ti.loop_config(block_dim=1)
    for t in range(tile_ranges.shape[0]):
        x0, x1, y0, y1 = tile_bounds(t, tiles_x, tile_size, width, height)
        # Per-pixel replay state and incoming gradients, gathered once into the stack.
        tile = ti.Matrix.zero(ti.f32, tile_size * tile_size, REPLAY_SIZE)
        last_tile = ti.Vector([0] * (tile_size * tile_size), ti.i32)
        end = 0
        for y, x in ti.ndrange((y0, y1), (x0, x1)):
            p = (y - y0) * tile_size + (x - x0)
            tile[p, T_NOW] = transmittance[y, x]
            tile[p, T_FINAL] = transmittance[y, x]
            tile[p, V_ALPHA] = v_alpha_out[y, x]
            for ch in ti.static(range(3)):
                tile[p, V_RED + ch] = v_image[y, x, ch]
            last_tile[p] = last[y, x]
            end = ti.max(end, last[y, x])
        j = tile_ranges[t, 1] - 1
        while j >= tile_ranges[t, 0]:
            acc = ti.types.vector(GRAD_SIZE, ti.f32)(0.0)
            abs_acc = ti.math.vec2(0.0)
            if j < end:  # pairs behind every pixel's last contributor get a zero row
                ya, yb = row_range(payload, j, y0, y1)
                pair = load_pair(payload, j)
                for y in range(ya, yb):
                    xa, xb = column_span(pair, y, x0, x1)
                    for x in range(xa, xb):
                        p = (y - y0) * tile_size + (x - x0)
                        if j < last_tile[p]:
                            grad = replay_pixel(pair, x, y, p, alpha_threshold, max_alpha, background, tile)
                            acc += grad
                            if ti.static(absgrad):
                                abs_acc += ti.abs(ti.math.vec2(grad[0], grad[1]))  # dL/du, dL/dv
            for k in ti.static(range(GRAD_SIZE)):
                pair_grads[j, k] = acc[k]
            if ti.static(absgrad):
                pair_grads[j, ABS_U] = abs_acc[0]
                pair_grads[j, ABS_V] = abs_acc[1]
            j -= 1
