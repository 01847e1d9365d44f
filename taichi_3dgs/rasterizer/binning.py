"""Tile binning: which Gaussians touch which 16x16 tile, sorted front to back per tile.

Follows the official rasterizer (`duplicateWithKeys`, `identifyTileRanges`): one 64-bit key per
(tile, Gaussian) pair, tile id in the high 32 bits and the float32 bit pattern of the (positive)
camera depth in the low 32 bits, sorted with torch; per-tile [start, end) ranges found by a kernel.
"""

from typing import NamedTuple

import taichi as ti
import torch

from taichi_3dgs.rasterizer.ndarrays import F32_1D, F32_2D, I32_1D, I32_2D, I64_1D


class TileBins(NamedTuple):
    """(tile, Gaussian) pairs sorted by tile, then by depth (front to back).

    Attributes:
        gaussian_ids: [M] int32, Gaussian index of each pair.
        tile_ranges: [tiles_y * tiles_x, 2] int32, [start, end) of each tile's pairs in
            `gaussian_ids`; tiles in row-major order (tile id = tile_y * tiles_x + tile_x).
        tiles_x, tiles_y: tile grid size, ceil(width / tile_size) x ceil(height / tile_size).
        pair_order: [M] int64, each sorted pair's position in the Gaussian-major list the pairs are
            emitted in (Gaussian i's pairs at [pair_ends[i-1], pair_ends[i]), tile ids ascending).
        pair_ends: [N] int64, one past Gaussian i's last position in that list (cumulative counts).
            With these, per-pair values are summed per Gaussian in a fixed order without atomics.
    """

    gaussian_ids: torch.Tensor
    tile_ranges: torch.Tensor
    tiles_x: int
    tiles_y: int
    pair_order: torch.Tensor
    pair_ends: torch.Tensor


@ti.func
def tile_rect(u: ti.f32, v: ti.f32, r: ti.f32, tile_size: ti.i32, tiles_x: ti.i32, tiles_y: ti.i32):
    """Tiles [x0, x1) x [y0, y1) overlapped by the square [u-r, u+r] x [v-r, v+r], clamped to the grid."""
    x0 = ti.math.clamp(ti.cast(ti.floor((u - r) / tile_size), ti.i32), 0, tiles_x)
    x1 = ti.math.clamp(ti.cast(ti.ceil((u + r) / tile_size), ti.i32), 0, tiles_x)
    y0 = ti.math.clamp(ti.cast(ti.floor((v - r) / tile_size), ti.i32), 0, tiles_y)
    y1 = ti.math.clamp(ti.cast(ti.ceil((v + r) / tile_size), ti.i32), 0, tiles_y)
    return x0, x1, y0, y1


@ti.kernel
def _count_tiles(
    means2d: F32_2D, radii: I32_1D, tile_size: ti.i32, tiles_x: ti.i32, tiles_y: ti.i32,
    counts: I32_1D,
):
    for i in range(radii.shape[0]):
        counts[i] = 0
        if radii[i] > 0:
            x0, x1, y0, y1 = tile_rect(means2d[i, 0], means2d[i, 1], ti.cast(radii[i], ti.f32),
                                       tile_size, tiles_x, tiles_y)
            counts[i] = (x1 - x0) * (y1 - y0)


@ti.kernel
def _emit_pairs(
    means2d: F32_2D, radii: I32_1D, depths: F32_1D, ends: I64_1D, tile_size: ti.i32,
    tiles_x: ti.i32, tiles_y: ti.i32, keys: I64_1D, ids: I32_1D,
):
    for i in range(radii.shape[0]):
        if radii[i] > 0:
            x0, x1, y0, y1 = tile_rect(means2d[i, 0], means2d[i, 1], ti.cast(radii[i], ti.f32),
                                       tile_size, tiles_x, tiles_y)
            # Depth > near_plane > 0, so its bit pattern is a non-negative int32 ordered as the float.
            depth_bits = ti.cast(ti.bit_cast(depths[i], ti.i32), ti.i64)
            j = ends[i] - (x1 - x0) * (y1 - y0)
            for ty in range(y0, y1):
                for tx in range(x0, x1):
                    keys[j] = (ti.cast(ty * tiles_x + tx, ti.i64) << 32) | depth_bits
                    ids[j] = i
                    j += 1


@ti.kernel
def _find_tile_ranges(sorted_keys: I64_1D, tile_ranges: I32_2D):
    m = sorted_keys.shape[0]
    for j in range(m):
        tile = ti.cast(sorted_keys[j] >> 32, ti.i32)
        if j == 0 or ti.cast(sorted_keys[j - 1] >> 32, ti.i32) != tile:
            tile_ranges[tile, 0] = j
        if j == m - 1 or ti.cast(sorted_keys[j + 1] >> 32, ti.i32) != tile:
            tile_ranges[tile, 1] = j + 1


def bin_tiles(
    means2d: torch.Tensor, radii: torch.Tensor, depths: torch.Tensor, width: int, height: int,
    tile_size: int = 16,
) -> TileBins:
    """Build the sorted (tile, Gaussian) pair list (not differentiable).

    Args:
        means2d: [N, 2] float32, projected centres in pixels.
        radii: [N] int32, screen radii in pixels (0 = culled: no pairs).
        depths: [N] float32, camera z (> 0 for every Gaussian with radius > 0).
        width, height: image size in pixels.
        tile_size: tile edge in pixels.

    Returns:
        `TileBins`. A Gaussian touches x tiles floor((u-r)/tile_size) .. ceil((u+r)/tile_size)-1,
        clamped to the grid, and likewise in y.
    """
    tiles_x = (width + tile_size - 1) // tile_size
    tiles_y = (height + tile_size - 1) // tile_size
    device = means2d.device
    n = radii.shape[0]
    tile_ranges = torch.zeros((tiles_x * tiles_y, 2), dtype=torch.int32, device=device)
    if n == 0:
        empty = torch.zeros((0,), dtype=torch.int64, device=device)
        return TileBins(empty.int(), tile_ranges, tiles_x, tiles_y, empty, empty)
    means2d = means2d.detach().contiguous()
    counts = torch.empty((n,), dtype=torch.int32, device=device)
    _count_tiles(means2d, radii, tile_size, tiles_x, tiles_y, counts)
    ends = torch.cumsum(counts, 0, dtype=torch.int64)
    num_pairs = int(ends[-1])  # the one host sync of the forward pass: sizes the pair buffers
    keys = torch.empty((num_pairs,), dtype=torch.int64, device=device)
    ids = torch.empty((num_pairs,), dtype=torch.int32, device=device)
    order = torch.empty((num_pairs,), dtype=torch.int64, device=device)
    if num_pairs > 0:
        _emit_pairs(means2d, radii, depths.detach().contiguous(), ends, tile_size, tiles_x, tiles_y, keys, ids)
        # Stable: Gaussians at bit-equal depths (duplicated points, clones) keep index order in
        # every tile, as in the official radix sort; unstable order could differ between tiles.
        sorted_keys, order = torch.sort(keys, stable=True)
        ids = ids[order]
        _find_tile_ranges(sorted_keys, tile_ranges)
    return TileBins(ids, tile_ranges, tiles_x, tiles_y, order, ends)
