"""The per-pair payload that both blending layouts read, and the per-pair math they share.

The pairs' payload (2D mean, conic, opacity, colour, depth, and the extent of the opacity-aware
ellipse) is gathered into one array in sorted (tile, depth) order first, so the blend reads memory
sequentially. The Taichi functions below evaluate one pair at one pixel: Kerbl et al. 2023, eq. 2-3,
with the official rasterizer's `renderCUDA` rules (`taichi_3dgs.rasterizer.blending`).
"""

import taichi as ti

from taichi_3dgs.rasterizer.ndarrays import F32_1D, F32_2D, I32_1D

# Columns of the per-pair payload and of the per-pair gradient.
U, V, CONIC_A, CONIC_B, CONIC_C, OPACITY, RED, DEPTH, EXTENT, Y_LO, Y_HI = 0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12
PAYLOAD_SIZE = 13
# Added to the squared Mahalanobis extent so float rounding never drops a pixel from a span.
EXTENT_MARGIN = 1e-2
GRAD_SIZE = 9  # u, v, conic a, b, c, opacity, r, g, b
# With absgrad, two more gradient columns: the sums over pixels of |dL/du| and |dL/dv| of each
# pixel's own contribution (AbsGS, Ye et al. 2024; gsplat's `absgrad`).
ABS_U, ABS_V = 9, 10
ABSGRAD_SIZE = 11


@ti.kernel
def gather_payload(
    ids: I32_1D, means2d: F32_2D, conics: F32_2D, colors: F32_2D, opacities: F32_1D,
    depths: F32_1D, alpha_threshold: ti.f32, height: ti.i32, payload: F32_2D,
):
    """Payload row j (`PAYLOAD_SIZE` float32 columns, names above) of pair j, whose Gaussian is ids[j].

    ids [P] int32 in sorted pair order; means2d [N, 2] px, conics [N, 3] 1/px^2, colors [N, 3],
    opacities [N], depths [N]; payload [P, PAYLOAD_SIZE] out. EXTENT is the squared Mahalanobis
    radius where alpha reaches alpha_threshold (-1 when it never does), Y_LO / Y_HI the pixel rows
    it spans (clamped near the image of `height` rows).
    """
    for j in range(ids.shape[0]):
        i = ids[j]
        u, v = means2d[i, 0], means2d[i, 1]
        a, b, c = conics[i, 0], conics[i, 1], conics[i, 2]
        o = opacities[i]
        payload[j, U] = u
        payload[j, V] = v
        payload[j, CONIC_A] = a
        payload[j, CONIC_B] = b
        payload[j, CONIC_C] = c
        payload[j, OPACITY] = o
        for ch in ti.static(range(3)):
            payload[j, RED + ch] = colors[i, ch]
        payload[j, DEPTH] = depths[i]
        # alpha >= alpha_threshold needs d^T conic d <= q = 2 log(o / alpha_threshold): an ellipse
        # whose y extent is sqrt(q cov_yy), cov = conic^-1. Outside it no pixel can contribute.
        q, y_lo, y_hi = -1.0, 1.0, 0.0
        det = a * c - b * b
        if o > alpha_threshold and det > 0.0:
            q = 2.0 * ti.log(o / alpha_threshold) + EXTENT_MARGIN
            half_y = ti.sqrt(q * a / det)
            # Pixel y has its centre at y + 0.5; clamping keeps the int conversion in range.
            y_lo = ti.math.clamp(v - half_y - 0.5, -2.0, height + 2.0)
            y_hi = ti.math.clamp(v + half_y - 0.5, -2.0, height + 2.0)
        payload[j, EXTENT] = q
        payload[j, Y_LO] = y_lo
        payload[j, Y_HI] = y_hi


@ti.func
def tile_bounds(t: ti.i32, tiles_x: ti.i32, tile_size: ti.i32, width: ti.i32, height: ti.i32):
    """Pixels [x0, x1) x [y0, y1) of tile t (row-major tile ids), clipped to the image."""
    x0 = (t % tiles_x) * tile_size
    y0 = (t // tiles_x) * tile_size
    return x0, ti.min(x0 + tile_size, width), y0, ti.min(y0 + tile_size, height)


PAIR_SIZE = EXTENT + 1
Pair = ti.types.vector(PAIR_SIZE, ti.f32)  # payload columns U .. EXTENT of one pair


@ti.func
def load_pair(pairs: ti.template(), j: ti.i32) -> Pair:
    """Pair j's (u, v, conic a, b, c, opacity, r, g, b, depth, extent) from `pairs` (the payload or
    a shared-memory batch), loaded once into registers."""
    return Pair([pairs[j, k] for k in ti.static(range(PAIR_SIZE))])


@ti.func
def gaussian_at(pair: Pair, x: ti.i32, y: ti.i32):
    """(G, dx, dy) at the centre of pixel (x, y): G = exp(-0.5 d^T conic d), d = centre - mean."""
    dx = x + 0.5 - pair[U]
    dy = y + 0.5 - pair[V]
    power = -0.5 * (pair[CONIC_A] * dx * dx + pair[CONIC_C] * dy * dy) - pair[CONIC_B] * dx * dy
    return ti.exp(power), dx, dy


@ti.func
def pair_color(pair: Pair) -> ti.math.vec3:
    """The pair's activated RGB."""
    return ti.math.vec3(pair[RED], pair[RED + 1], pair[RED + 2])


@ti.func
def pair_gradient(
    pair: Pair, g: ti.f32, dx: ti.f32, dy: ti.f32, v_alpha: ti.f32, max_alpha: ti.f32
) -> ti.types.vector(6, ti.f32):
    """dL/d(u, v, conic a, b, c, opacity) of a pair at one pixel, given dL/dalpha there."""
    grad = ti.types.vector(6, ti.f32)(0.0)
    o = pair[OPACITY]
    if o * g < max_alpha:  # where alpha is clamped to max_alpha it does not depend on anything
        v_power = v_alpha * o * g
        a, b, c = pair[CONIC_A], pair[CONIC_B], pair[CONIC_C]
        grad = ti.types.vector(6, ti.f32)(
            v_power * (a * dx + b * dy), v_power * (b * dx + c * dy), -0.5 * v_power * dx * dx,
            -v_power * dx * dy, -0.5 * v_power * dy * dy, v_alpha * g,
        )
    return grad
