"""Per-tile front-to-back alpha blending (forward) and its hand-written back-to-front replay.

Math: Kerbl et al. 2023, eq. 2-3 (C = sum_i c_i alpha_i T_i, T_i = prod_{j<i} (1 - alpha_j)),
with the official rasterizer's rules (`renderCUDA`, `renderCUDA` backward in
graphdeco-inria/diff-gaussian-rasterization): alpha = min(max_alpha, opacity * exp(-0.5 d^T conic d)),
skip alpha < alpha_threshold, stop before the Gaussian that would bring T below the
transmittance threshold, background weighted by the final T. The backward walks each pixel's list
back to front from the stored final transmittance and last contributor, recovering
T_i = T_{i+1} / (1 - alpha_i).

Two kernel layouts, chosen by architecture (both exact; per_pixel is tested on Taichi's Vulkan
backend, which Mesa's lavapipe runs on the CPU):
- "per_tile" (CPU): one thread per tile, Gaussians outer and pixels inner, each Gaussian visiting
  only the pixels of its opacity-aware ellipse (where alpha can reach alpha_threshold), row by
  row; the tile's per-pixel state (transmittance, colour, replay state, incoming gradients) lives
  in a stack array, written to memory once (half the time of updating the output tensors in
  place); the tile stops when all its pixels are saturated; the backward sums a Gaussian's
  gradient over the tile's pixels in registers and writes it once per (tile, Gaussian) pair; the
  pairs are summed per Gaussian in a fixed order, so CPU training is bit-for-bit reproducible.
- "per_pixel" (CUDA, Vulkan): one thread per pixel, one block per tile, as in the official
  rasterizer: the tile's pairs pass through block shared memory in batches of one pair per thread
  (each thread stages one, then every thread reads the whole batch), front to back in the forward,
  back to front from the tile's last contributor in the backward; the block stops when all its
  pixels are saturated (a shared counter read between barriers, so every thread leaves together);
  the backward adds each pixel's contribution to the Gaussian's gradient atomically. Every thread
  walks the whole batch and masks its finished pixel instead of leaving the batch loop early: a
  data-dependent exit from that loop miscomputed pixels on lavapipe (Mesa 22.3).
The pairs' payload (2D mean, conic, opacity, colour, depth, bounding box) is gathered into one
array in sorted order first, so the blend reads memory sequentially.
"""

import taichi as ti
import torch

from taichi_3dgs.backend import GPU_ARCHS, init_taichi
from taichi_3dgs.rasterizer.binning import TileBins
from taichi_3dgs.rasterizer.config import RasterizerConfig
from taichi_3dgs.rasterizer.ndarrays import F32_1D, F32_2D, F32_3D, I32_1D, I32_2D

# Columns of the per-pair payload and of the per-pair gradient.
U, V, CONIC_A, CONIC_B, CONIC_C, OPACITY, RED, DEPTH, EXTENT, Y_LO, Y_HI = 0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12
PAYLOAD_SIZE = 13
# Added to the squared Mahalanobis extent so float rounding never drops a pixel from a span.
EXTENT_MARGIN = 1e-2
GRAD_SIZE = 9  # u, v, conic a, b, c, opacity, r, g, b
# Columns of the per-tile replay state of the CPU backward.
T_NOW, T_FINAL, V_ALPHA, V_RED, BEHIND_RED = 0, 1, 2, 3, 6
REPLAY_SIZE = 9
KERNELS = ("auto", "per_tile", "per_pixel")


@ti.kernel
def _gather_payload(
    ids: I32_1D, means2d: F32_2D, conics: F32_2D, colors: F32_2D, opacities: F32_1D,
    depths: F32_1D, alpha_threshold: ti.f32, height: ti.i32, payload: F32_2D,
):
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


@ti.func
def pixel_of_thread(p: ti.i32, tiles_x: ti.i32, tile_size: ti.template()):
    """(tile, x, y) of thread p when each tile gets tile_size^2 consecutive threads (one block)."""
    t = p // (tile_size * tile_size)
    return t, (t % tiles_x) * tile_size + p % tile_size, (t // tiles_x) * tile_size + (p // tile_size) % tile_size


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


@ti.kernel
def _forward_per_tile(
    payload: F32_2D, tile_ranges: I32_2D, background: F32_1D, width: ti.i32, height: ti.i32,
    tiles_x: ti.i32, tile_size: ti.template(), alpha_threshold: ti.f32, max_alpha: ti.f32,
    transmittance_threshold: ti.f32,
    image: F32_3D, transmittance: F32_2D, depth: F32_2D, last: I32_2D,
):
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
def _backward_per_tile(
    payload: F32_2D, tile_ranges: I32_2D, background: F32_1D, width: ti.i32, height: ti.i32,
    tiles_x: ti.i32, tile_size: ti.template(), alpha_threshold: ti.f32, max_alpha: ti.f32,
    transmittance: F32_2D, last: I32_2D, v_image: F32_3D, v_alpha_out: F32_2D,
    pair_grads: F32_2D,
):
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
            if j < end:  # pairs behind every pixel's last contributor get a zero row
                ya, yb = row_range(payload, j, y0, y1)
                pair = load_pair(payload, j)
                for y in range(ya, yb):
                    xa, xb = column_span(pair, y, x0, x1)
                    for x in range(xa, xb):
                        p = (y - y0) * tile_size + (x - x0)
                        if j < last_tile[p]:
                            acc += replay_pixel(pair, x, y, p, alpha_threshold, max_alpha, background, tile)
            for k in ti.static(range(GRAD_SIZE)):
                pair_grads[j, k] = acc[k]
            j -= 1


@ti.kernel
def _forward_per_pixel(
    payload: F32_2D, tile_ranges: I32_2D, background: F32_1D, width: ti.i32, height: ti.i32,
    tiles_x: ti.i32, tile_size: ti.template(), alpha_threshold: ti.f32, max_alpha: ti.f32,
    transmittance_threshold: ti.f32,
    image: F32_3D, transmittance: F32_2D, depth: F32_2D, last: I32_2D,
):
    block = ti.static(tile_size * tile_size)
    ti.loop_config(block_dim=block)
    for p in range(tile_ranges.shape[0] * block):
        # The tile's pairs pass through shared memory a batch (one pair per thread) at a time.
        staged = ti.simt.block.SharedArray((block, PAIR_SIZE), ti.f32)
        finished = ti.simt.block.SharedArray((1,), ti.i32)  # pixels of the tile that stopped
        t, x, y = pixel_of_thread(p, tiles_x, tile_size)
        thread = p % block
        x0, x1, y0, y1 = tile_bounds(t, tiles_x, tile_size, width, height)
        pixels = (x1 - x0) * (y1 - y0)
        inside = x < width and y < height
        done = not inside  # threads past the image edge only stage pairs
        if thread == 0:
            finished[0] = 0
        T = 1.0
        color = ti.math.vec3(0.0)
        z = 0.0
        last_j = 0
        start, end = tile_ranges[t, 0], tile_ranges[t, 1]
        going = True
        while going:
            ti.simt.block.sync()  # the last batch is consumed and `finished` settled
            going = start < end and finished[0] < pixels  # the same for the whole block
            if going:
                if start + thread < end:
                    for k in ti.static(range(PAIR_SIZE)):
                        staged[thread, k] = payload[start + thread, k]
                ti.simt.block.sync()
                for b in range(ti.min(block, end - start)):
                    if not done:
                        pair = load_pair(staged, b)
                        g, _, _ = gaussian_at(pair, x, y)
                        alpha = ti.min(max_alpha, pair[OPACITY] * g)
                        if alpha >= alpha_threshold:
                            next_T = T * (1.0 - alpha)
                            if next_T < transmittance_threshold:
                                done = True
                                ti.atomic_add(finished[0], 1)
                            else:
                                w = alpha * T
                                color += w * pair_color(pair)
                                z += w * pair[DEPTH]
                                T = next_T
                                last_j = start + b + 1
                start += block
        # A block runs several tiles when they outnumber the blocks launched (grid-stride loop):
        # every thread must have read `finished` before thread 0 resets it for the next tile.
        ti.simt.block.sync()
        if inside:
            for ch in ti.static(range(3)):
                image[y, x, ch] = color[ch] + T * background[ch]
            transmittance[y, x] = T
            depth[y, x] = z / (1.0 - T) if T < 1.0 else 0.0
            last[y, x] = last_j


@ti.kernel
def _backward_per_pixel(
    payload: F32_2D, tile_ranges: I32_2D, background: F32_1D, width: ti.i32, height: ti.i32,
    tiles_x: ti.i32, tile_size: ti.template(), alpha_threshold: ti.f32, max_alpha: ti.f32,
    transmittance: F32_2D, last: I32_2D, v_image: F32_3D, v_alpha_out: F32_2D, ids: I32_1D,
    grads: F32_2D,
):
    block = ti.static(tile_size * tile_size)
    ti.loop_config(block_dim=block)
    for p in range(tile_ranges.shape[0] * block):
        # Back to front, a batch of pairs (one per thread) at a time through shared memory.
        staged = ti.simt.block.SharedArray((block, PAIR_SIZE), ti.f32)
        staged_ids = ti.simt.block.SharedArray((block,), ti.i32)
        tile_end = ti.simt.block.SharedArray((1,), ti.i32)  # one past the tile's last contributor
        t, x, y = pixel_of_thread(p, tiles_x, tile_size)
        thread = p % block
        inside = x < width and y < height
        start = tile_ranges[t, 0]
        if thread == 0:
            tile_end[0] = start
        T_final, last_j, v_alpha_pixel = 1.0, 0, 0.0
        v_c = ti.math.vec3(0.0)
        if inside:
            T_final, last_j, v_alpha_pixel = transmittance[y, x], last[y, x], v_alpha_out[y, x]
            v_c = ti.math.vec3(v_image[y, x, 0], v_image[y, x, 1], v_image[y, x, 2])
        ti.simt.block.sync()
        ti.atomic_max(tile_end[0], last_j)
        ti.simt.block.sync()
        top = tile_end[0]  # the same for the whole block
        T = T_final
        behind = ti.math.vec3(0.0)
        bg = ti.math.vec3(background[0], background[1], background[2])
        while top > start:
            base = ti.max(start, top - block)
            if top - 1 - thread >= base:  # thread k stages the k-th pair from the back
                for k in ti.static(range(PAIR_SIZE)):
                    staged[thread, k] = payload[top - 1 - thread, k]
                staged_ids[thread] = ids[top - 1 - thread]
            ti.simt.block.sync()
            for b in range(top - base):
                if top - 1 - b < last_j:
                    pair = load_pair(staged, b)
                    g, dx, dy = gaussian_at(pair, x, y)
                    alpha = ti.min(max_alpha, pair[OPACITY] * g)
                    if alpha >= alpha_threshold:
                        one_minus = 1.0 - alpha
                        T = T / one_minus
                        color = pair_color(pair)
                        v_alpha = v_alpha_pixel * T_final / one_minus + v_c.dot(
                            color * T - (behind + T_final * bg) / one_minus
                        )
                        behind += color * alpha * T
                        grad = pair_gradient(pair, g, dx, dy, v_alpha, max_alpha)
                        i = staged_ids[b]
                        for k in ti.static(range(6)):
                            ti.atomic_add(grads[i, k], grad[k])
                        for ch in ti.static(range(3)):
                            ti.atomic_add(grads[i, 6 + ch], alpha * T * v_c[ch])
            ti.simt.block.sync()  # the batch is consumed before the next one is staged
            top = base
        ti.simt.block.sync()  # `tile_end` is read by all before a next tile of this block resets it


def _layout(kernel: str) -> str:
    if kernel not in KERNELS:
        raise ValueError(f"kernel: expected one of {KERNELS}, got {kernel!r}")
    arch = init_taichi()
    if kernel == "auto":
        return "per_pixel" if arch in GPU_ARCHS else "per_tile"
    if kernel == "per_pixel" and arch not in GPU_ARCHS:
        raise ValueError(f"kernel 'per_pixel' needs block shared memory, which Taichi has on {GPU_ARCHS}, "
                         f"not on {arch!r}")
    return kernel


class _BlendTiles(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, colors, opacities, depths, bins, background, width, height, config, layout):
        # Taichi inspects .grad of tensors that require grad; the kernels need only the data.
        means2d, conics, colors, opacities, depths = (
            t.detach() for t in (means2d, conics, colors, opacities, depths)
        )
        device = means2d.device
        ids = bins.gaussian_ids
        payload = torch.empty((max(ids.shape[0], 1), PAYLOAD_SIZE), dtype=torch.float32, device=device)
        if ids.shape[0] > 0:
            _gather_payload(ids, means2d, conics, colors, opacities, depths, config.alpha_threshold,
                            height, payload)
        image = torch.empty((height, width, 3), dtype=torch.float32, device=device)
        transmittance = torch.empty((height, width), dtype=torch.float32, device=device)
        depth = torch.empty((height, width), dtype=torch.float32, device=device)
        last = torch.empty((height, width), dtype=torch.int32, device=device)
        kernel = _forward_per_tile if layout == "per_tile" else _forward_per_pixel
        kernel(payload, bins.tile_ranges, background, width, height, bins.tiles_x, config.tile_size,
               config.alpha_threshold, config.max_alpha, config.transmittance_threshold,
               image, transmittance, depth, last)
        ctx.save_for_backward(ids, payload, bins.tile_ranges, background, transmittance, last)
        ctx.settings = (means2d.shape[0], bins.tiles_x, width, height, config, layout)
        ctx.mark_non_differentiable(depth)
        return image, 1.0 - transmittance, depth

    @staticmethod
    def backward(ctx, v_image, v_alpha, _v_depth):
        ids, payload, tile_ranges, background, transmittance, last = ctx.saved_tensors
        n, tiles_x, width, height, config, layout = ctx.settings
        device = payload.device
        v_image = torch.zeros_like(transmittance).unsqueeze(-1).expand(-1, -1, 3).contiguous() \
            if v_image is None else v_image.contiguous()
        v_alpha = torch.zeros_like(transmittance) if v_alpha is None else v_alpha.contiguous()
        grads = torch.zeros((n, GRAD_SIZE), dtype=torch.float32, device=device)
        args = (payload, tile_ranges, background, width, height, tiles_x, config.tile_size,
                config.alpha_threshold, config.max_alpha, transmittance, last, v_image, v_alpha)
        if ids.shape[0] > 0 and layout == "per_tile":
            # One row per pair, summed per Gaussian in a fixed order: bit-for-bit reproducible
            # training on the CPU (atomic float adds would depend on thread timing).
            pair_grads = torch.empty((ids.shape[0], GRAD_SIZE), dtype=torch.float32, device=device)
            _backward_per_tile(*args, pair_grads)
            grads.index_add_(0, ids.long(), pair_grads)  # int64: torch's int32 path is 5x slower
        elif ids.shape[0] > 0:
            _backward_per_pixel(*args, ids, grads)
        v_means2d = grads[:, 0:2]
        v_conics = grads[:, 2:5]
        v_opacities = grads[:, 5]
        v_colors = grads[:, 6:9]
        return v_means2d, v_conics, v_colors, v_opacities, None, None, None, None, None, None, None


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
        config: tile_size, alpha_threshold, max_alpha, transmittance_threshold are used.
        kernel: "auto" (per_tile on CPU, per_pixel on CUDA and Vulkan), "per_tile" or "per_pixel".

    Returns:
        (image [H, W, 3], alpha [H, W] = 1 - final transmittance, depth [H, W] = alpha-weighted
        camera z normalised by alpha, 0 where alpha is 0), all float32.

    Raises:
        ValueError: unknown `kernel`, or "per_pixel" on ti.cpu (which has no block shared memory).
    """
    layout = _layout(kernel)
    return _BlendTiles.apply(
        means2d.contiguous(), conics.contiguous(), colors.contiguous(), opacities.contiguous(),
        depths.contiguous(), bins, background.contiguous(), int(width), int(height), config, layout,
    )
