"""The GPU blending layout "per_pixel" (CUDA, Vulkan): one thread per pixel, one block per tile.

As in the official rasterizer: the tile's pairs pass through block shared memory in batches of one
pair per thread (each thread stages one, then every thread reads the whole batch), front to back in
the forward, back to front from the tile's last contributor in the backward; the block stops when
all its pixels are saturated (a shared counter read between barriers, so every thread leaves
together). Two backwards: `backward_per_pixel` adds each pixel's contribution to the Gaussian's
gradient atomically; `backward_per_pixel_rows` sums the contributions of the tile's pixels inside
the block in a fixed order (block shared memory), writes one row per (tile, Gaussian) pair, and
`sum_pair_rows` adds each Gaussian's rows in a fixed order: bit-identical on every run.
Every thread walks the whole batch and masks its finished pixel instead of leaving the batch loop
early: a data-dependent exit from that loop miscomputed pixels on lavapipe (Mesa 22.3). Tested on
Taichi's Vulkan backend, which Mesa's lavapipe runs on the CPU. Math: `taichi_3dgs.rasterizer.blending`.
"""

import taichi as ti

from taichi_3dgs.rasterizer.blending_payload import (
    ABS_U, ABS_V, ABSGRAD_SIZE, DEPTH, GRAD_SIZE, OPACITY, PAIR_SIZE, gaussian_at, load_pair, pair_color,
    pair_gradient, tile_bounds,
)
from taichi_3dgs.rasterizer.ndarrays import F32_1D, F32_2D, F32_3D, I32_1D, I32_2D, I64_1D

# Floats of block shared memory for the per-pixel gradients being reduced (32 KB), and the
# number of segments each pair's column of per-pixel values is summed in before the final sum.
REDUCE_FLOATS = 8192
REDUCE_SEGMENTS = 8


@ti.func
def pixel_of_thread(p: ti.i32, tiles_x: ti.i32, tile_size: ti.template()):
    """(tile, x, y) of thread p when each tile gets tile_size^2 consecutive threads (one block)."""
    t = p // (tile_size * tile_size)
    return t, (t % tiles_x) * tile_size + p % tile_size, (t // tiles_x) * tile_size + (p // tile_size) % tile_size


@ti.kernel
def forward_per_pixel(
    payload: F32_2D, tile_ranges: I32_2D, background: F32_1D, width: ti.i32, height: ti.i32,
    tiles_x: ti.i32, tile_size: ti.template(), alpha_threshold: ti.f32, max_alpha: ti.f32,
    transmittance_threshold: ti.f32,
    image: F32_3D, transmittance: F32_2D, depth: F32_2D, last: I32_2D,
):
    """Blend the pairs of every tile front to back with one thread per pixel, one block per tile;
    arguments and outputs as `blending_per_tile.forward_per_tile` (the same kernel interface)."""
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


@ti.func
def replay_step(pair: ti.template(), x: ti.i32, y: ti.i32, T: ti.f32, T_final: ti.f32, behind: ti.math.vec3,
                v_c: ti.math.vec3, v_alpha_pixel: ti.f32, bg: ti.math.vec3, alpha_threshold: ti.f32,
                max_alpha: ti.f32):
    """One back-to-front step of pixel (x, y) past `pair`: (gradient [GRAD_SIZE] of the pair there,
    whether the pair contributed, the transmittance in front of it, the colour behind it).

    dC/dalpha_i = c_i T_i - (sum_{k>i} c_k alpha_k T_k + T_final background) / (1 - alpha_i),
    dalpha_out/dalpha_i = T_final / (1 - alpha_i) (`blending_per_tile.replay_pixel`).
    """
    grad = ti.types.vector(GRAD_SIZE, ti.f32)(0.0)
    g, dx, dy = gaussian_at(pair, x, y)
    alpha = ti.min(max_alpha, pair[OPACITY] * g)
    hit = alpha >= alpha_threshold
    T_front = T
    behind_out = behind
    if hit:
        one_minus = 1.0 - alpha
        T_front = T / one_minus
        color = pair_color(pair)
        v_alpha = v_alpha_pixel * T_final / one_minus + v_c.dot(color * T_front - (behind + T_final * bg) / one_minus)
        behind_out = behind + color * alpha * T_front
        geometry = pair_gradient(pair, g, dx, dy, v_alpha, max_alpha)
        for k in ti.static(range(6)):
            grad[k] = geometry[k]
        for ch in ti.static(range(3)):
            grad[6 + ch] = alpha * T_front * v_c[ch]
    return grad, hit, T_front, behind_out


@ti.func
def replay_start(tile_end: ti.template(), start: ti.i32, thread: ti.i32, x: ti.i32, y: ti.i32, inside: ti.i32,
                 transmittance: ti.template(), last: ti.template(), v_image: ti.template(),
                 v_alpha_out: ti.template()):
    """A backward thread's start: (one past the tile's last contributor, the same for the whole
    block; the pixel's final transmittance, last contributor, dL/dalpha, dL/dcolour), neutral
    values for threads past the image edge. Every thread of the block must call it (barriers)."""
    if thread == 0:
        tile_end[0] = start
    T_final, last_j, v_alpha_pixel = 1.0, 0, 0.0
    v_c = ti.math.vec3(0.0)
    if inside:
        T_final, last_j, v_alpha_pixel = transmittance[y, x], last[y, x], v_alpha_out[y, x]
        v_c = ti.math.vec3(v_image[y, x, 0], v_image[y, x, 1], v_image[y, x, 2])
    ti.simt.block.sync()
    ti.atomic_max(tile_end[0], last_j)  # integer max: exact in any order
    ti.simt.block.sync()
    return tile_end[0], T_final, last_j, v_alpha_pixel, v_c


@ti.kernel
def backward_per_pixel(
    payload: F32_2D, tile_ranges: I32_2D, background: F32_1D, width: ti.i32, height: ti.i32,
    tiles_x: ti.i32, tile_size: ti.template(), alpha_threshold: ti.f32, max_alpha: ti.f32,
    transmittance: F32_2D, last: I32_2D, v_image: F32_3D, v_alpha_out: F32_2D, absgrad: ti.template(),
    ids: I32_1D, grads: F32_2D,
):
    """Replay every pixel back to front with one thread per pixel, one block per tile; arguments as
    `blending_per_tile.backward_per_tile`, but each pixel's gradient of pair j is added atomically
    to grads[ids[j]] ([N, GRAD_SIZE], or [N, ABSGRAD_SIZE] with absgrad; zeroed by the caller)
    instead of a row per pair."""
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
        top, T_final, last_j, v_alpha_pixel, v_c = replay_start(tile_end, start, thread, x, y, inside,
                                                                transmittance, last, v_image, v_alpha_out)
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
                    grad, hit, T, behind = replay_step(load_pair(staged, b), x, y, T, T_final, behind, v_c,
                                                       v_alpha_pixel, bg, alpha_threshold, max_alpha)
                    if hit:
                        i = staged_ids[b]
                        for k in ti.static(range(GRAD_SIZE)):
                            ti.atomic_add(grads[i, k], grad[k])
                        if ti.static(absgrad):
                            ti.atomic_add(grads[i, ABS_U], ti.abs(grad[0]))  # dL/du, dL/dv
                            ti.atomic_add(grads[i, ABS_V], ti.abs(grad[1]))
            ti.simt.block.sync()  # the batch is consumed before the next one is staged
            top = base
        ti.simt.block.sync()  # `tile_end` is read by all before a next tile of this block resets it


@ti.kernel
def backward_per_pixel_rows(
    payload: F32_2D, tile_ranges: I32_2D, background: F32_1D, width: ti.i32, height: ti.i32,
    tiles_x: ti.i32, tile_size: ti.template(), alpha_threshold: ti.f32, max_alpha: ti.f32,
    transmittance: F32_2D, last: I32_2D, v_image: F32_3D, v_alpha_out: F32_2D, absgrad: ti.template(),
    pair_order: I64_1D, rows: F32_2D,
):
    """Replay every pixel back to front as `backward_per_pixel`, without atomics: the gradients of
    a chunk of pairs at the tile's pixels go to block shared memory, are summed over the pixels in a
    fixed order (REDUCE_SEGMENTS segments, then the segments), and pair j's sum is written to row
    pair_order[j] of rows ([P, GRAD_SIZE], or [P, ABSGRAD_SIZE] with absgrad; pairs behind every
    pixel's last contributor get a zero row: every row is written). tile_size <= 16."""
    block = ti.static(tile_size * tile_size)
    size = ti.static(ABSGRAD_SIZE if absgrad else GRAD_SIZE)
    chunk = ti.static(max(1, min(block, REDUCE_FLOATS // (size * (block + 1)))))  # pairs reduced at once
    seg_len = ti.static((block + REDUCE_SEGMENTS - 1) // REDUCE_SEGMENTS)
    segments = ti.static((block + seg_len - 1) // seg_len)
    ti.loop_config(block_dim=block)
    for p in range(tile_ranges.shape[0] * block):
        staged = ti.simt.block.SharedArray((block, PAIR_SIZE), ti.f32)
        # per-pixel values, one row per (pair of the chunk, gradient column); +1 column against bank conflicts
        values = ti.simt.block.SharedArray((int(chunk * size), int(block + 1)), ti.f32)
        partial = ti.simt.block.SharedArray((int(chunk * size), int(segments)), ti.f32)
        tile_end = ti.simt.block.SharedArray((1,), ti.i32)
        t, x, y = pixel_of_thread(p, tiles_x, tile_size)
        thread = p % block
        inside = x < width and y < height
        start = tile_ranges[t, 0]
        top, T_final, last_j, v_alpha_pixel, v_c = replay_start(tile_end, start, thread, x, y, inside,
                                                                transmittance, last, v_image, v_alpha_out)
        behind_all = top + thread  # pairs behind every pixel's last contributor: zero rows
        while behind_all < tile_ranges[t, 1]:
            for k in ti.static(range(size)):
                rows[pair_order[behind_all], k] = 0.0
            behind_all += block
        T = T_final
        behind = ti.math.vec3(0.0)
        bg = ti.math.vec3(background[0], background[1], background[2])
        while top > start:
            base = ti.max(start, top - block)
            if top - 1 - thread >= base:
                for k in ti.static(range(PAIR_SIZE)):
                    staged[thread, k] = payload[top - 1 - thread, k]
            ti.simt.block.sync()
            first = 0
            while first < top - base:  # a chunk of the batch's pairs, back to front
                for c in ti.static(range(chunk)):
                    grad = ti.types.vector(GRAD_SIZE, ti.f32)(0.0)
                    b = first + c
                    if b < top - base and top - 1 - b < last_j:
                        grad, _, T, behind = replay_step(load_pair(staged, b), x, y, T, T_final, behind, v_c,
                                                         v_alpha_pixel, bg, alpha_threshold, max_alpha)
                    for k in ti.static(range(GRAD_SIZE)):
                        values[c * size + k, thread] = grad[k]
                    if ti.static(absgrad):
                        values[c * size + ABS_U, thread] = ti.abs(grad[0])  # dL/du, dL/dv
                        values[c * size + ABS_V, thread] = ti.abs(grad[1])
                ti.simt.block.sync()
                task = thread
                while task < chunk * size * segments:  # (row, segment) tasks, strided over the block
                    q, s = task // segments, task % segments
                    acc = 0.0
                    for i in range(s * seg_len, ti.min(block, (s + 1) * seg_len)):
                        acc += values[q, i]
                    partial[q, s] = acc
                    task += block
                ti.simt.block.sync()
                q = thread
                while q < chunk * size:
                    b = first + q // size
                    if b < top - base:
                        acc = 0.0
                        for s in range(segments):
                            acc += partial[q, s]
                        rows[pair_order[top - 1 - b], q % size] = acc
                    q += block
                first += chunk
            ti.simt.block.sync()  # the batch is consumed before the next one is staged
            top = base
        ti.simt.block.sync()  # `tile_end` is read by all before a next tile of this block resets it


@ti.kernel
def sum_pair_rows(rows: F32_2D, pair_ends: I64_1D, grads: F32_2D):
    """grads[i] = the sum of rows [pair_ends[i-1], pair_ends[i]) (0 for i = 0) in ascending order:
    each Gaussian's (tile, Gaussian) rows in the Gaussian-major order of binning, one thread each."""
    for i in range(pair_ends.shape[0]):
        begin = 0
        if i > 0:
            begin = ti.cast(pair_ends[i - 1], ti.i32)
        for k in range(rows.shape[1]):
            acc = 0.0
            for r in range(begin, ti.cast(pair_ends[i], ti.i32)):
                acc += rows[r, k]
            grads[i, k] = acc
