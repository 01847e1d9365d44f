""".compressed.ply files: PlayCanvas / SuperSplat's chunked, quantised PLY layout.

Layout (PlayCanvas engine `gsplat-compressed-data.js` and splat-transform
`write-compressed-ply.ts` / `decompress-ply.ts`): a binary little-endian PLY with

    element chunk ceil(N / 256)   float min_x min_y min_z max_x max_y max_z
                                  min_scale_x .. max_scale_z, min_r min_g min_b max_r max_g max_b
    element vertex N              uint packed_position packed_rotation packed_scale packed_color
    element sh N                  uchar f_rest_0 .. f_rest_{3K-1}   (only for SH degree > 0)

Gaussians are stored in Morton order (`quantisation.morton_order`), 256 to a chunk; each chunk
holds the range of its positions, log scales (clamped to -20..20) and DC colours
0.5 + SH_C0 * f_dc, and every value is stored relative to its chunk's range:

    packed_position  11, 10, 11 bits of x, y, z (high to low bits)
    packed_scale     11, 10, 11 bits of log scale 0, 1, 2
    packed_color     8 bits each of r, g, b (chunk range) and sigmoid(opacity) (0..1)
    packed_rotation  "smallest three" of the unit quaternion in w, x, y, z order: 2 bits index
                     of the largest component, then 10 bits each of q * sqrt(2) / 2 + 0.5
    f_rest_*         8 bits of c / 8 + 0.5 (coefficients -4..4, channel-major as in the official
                     PLY); decoded from the middle of the byte's bucket, 0 -> -4, 255 -> 4

Units rounded to nearest. Bands up to 3 survive (the `sh` element's size gives the degree). The
antialiased flag travels in the same header comment as in our PLY files
(`ply.ANTIALIASED_COMMENT`); other readers ignore it. Files with the older 12-property chunks
(no colour range: colours stored as 0..1) are read too.
"""
from __future__ import annotations

import os

import numpy as np
from plyfile import PlyData, PlyElement, PlyParseError

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.color_model import SH_C0
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.ply import ANTIALIASED_COMMENT, check_linear_scene
from taichi_3dgs.scene.quantisation import (SceneArrays, arrays_to_scene, check_exists,
                                            degree_bands, from_smallest_three, morton_sorted,
                                            pack_unorm, sh_degree_of,
                                            smallest_three, unpack_unorm)

CHUNK_SIZE = 256
"""Gaussians per chunk (each chunk has its own quantisation ranges)."""

_CHUNK_PROPERTIES = ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
                     "min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y",
                     "max_scale_z", "min_r", "min_g", "min_b", "max_r", "max_g", "max_b")
_VERTEX_PROPERTIES = ("packed_position", "packed_rotation", "packed_scale", "packed_color")
_BITS_11_10_11 = (11, 10, 11)


def is_compressed_ply(path: str | os.PathLike) -> bool:
    """Whether `path` is a PLY file whose header declares a `chunk` element (this layout), read
    from the header only; False for anything else (including unreadable files)."""
    try:
        with open(path, "rb") as file:
            head = file.read(65536)
    except OSError:
        return False
    header = head.split(b"end_header", 1)[0]
    return head.startswith(b"ply") and b"\nelement chunk " in header


def write_compressed_ply(path: str | os.PathLike, scene: GaussianScene) -> np.ndarray:
    """Write a linear-colour `scene` as a PlayCanvas compressed PLY file, atomically.

    Layout and quantisation: module docstring. N may be 0.

    Returns:
        [N] int64 file order: row i of the file is the scene's Gaussian `order[i]`.

    Raises:
        ValueError: `scene.validate()` fails, or the scene uses `sigmoid` colour. Nothing is
            written.
        OSError: the file cannot be written; the destination is left untouched.
    """
    check_linear_scene(path, scene, "compressed PLY")
    arrays, order = morton_sorted(scene)
    n = len(order)
    colours = 0.5 + SH_C0 * arrays.sh[:, 0]
    values = np.concatenate([arrays.means, np.clip(arrays.log_scales, -20.0, 20.0), colours], 1)
    chunk_of = np.arange(n) // CHUNK_SIZE
    num_chunks = -(-n // CHUNK_SIZE)
    low = np.full((num_chunks, 9), np.inf)
    high = np.full((num_chunks, 9), -np.inf)
    np.minimum.at(low, chunk_of, values)
    np.maximum.at(high, chunk_of, values)
    # PlayCanvas `normalize`: a range under 1e-5 stores 0 (its decoder returns the minimum).
    width = high - low
    unit = np.where(width[chunk_of] < 1e-5, 0.0, (values - low[chunk_of])
                    / np.where(width[chunk_of] < 1e-5, 1.0, width[chunk_of]))
    largest, others = smallest_three(arrays.quats)
    rotation = largest
    for i in range(3):
        rotation = (rotation << 10) | pack_unorm(others[:, i] * np.sqrt(0.5) + 0.5, 10)
    colour = pack_unorm(np.concatenate([unit[:, 6:9], arrays.opacities[:, None]], 1), 8)
    vertex = np.stack([_pack_111011(unit[:, 0:3]), rotation, _pack_111011(unit[:, 3:6]),
                       (colour[:, 0] << 24) | (colour[:, 1] << 16) | (colour[:, 2] << 8)
                       | colour[:, 3]], axis=1)
    chunk = np.concatenate([low[:, 0:3], high[:, 0:3], low[:, 3:6], high[:, 3:6], low[:, 6:9],
                            high[:, 6:9]], axis=1)
    elements = [_element("chunk", chunk, _CHUNK_PROPERTIES, "<f4"),
                _element("vertex", vertex, _VERTEX_PROPERTIES, "<u4")]
    bands = degree_bands(arrays.sh_degree)
    if bands:
        rest = arrays.sh[:, 1:1 + bands].transpose(0, 2, 1).reshape(n, 3 * bands)
        sh_bytes = np.clip(np.floor((rest / 8.0 + 0.5) * 256.0), 0, 255)
        elements.append(_element("sh", sh_bytes, [f"f_rest_{i}" for i in range(3 * bands)], "u1"))
    comments = [f"{ANTIALIASED_COMMENT} true"] if arrays.antialiased else []
    ply = PlyData(elements, text=False, byte_order="<", comments=comments)
    with atomic_path(path) as tmp:
        ply.write(str(tmp))
    return order


def read_compressed_ply(path: str | os.PathLike) -> GaussianScene:
    """Read a PlayCanvas compressed PLY file into a linear-colour `GaussianScene` on the CPU.

    Decoding inverts the module docstring's quantisation; rows keep the file's order.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: not a PLY file, truncated data, a missing element or property, a chunk count
            other than ceil(N / 256), an `sh` element of another size than N rows of 9, 24 or 45
            bytes, or a non-finite chunk range; the message names the file.
    """
    check_exists(path)
    try:
        ply = PlyData.read(str(path), mmap=False)
    except (PlyParseError, ValueError, UnicodeDecodeError, EOFError) as error:
        raise ValueError(f"{path}: not a readable compressed PLY file ({error})") from error
    chunk = _columns(path, ply, "chunk", _CHUNK_PROPERTIES[:12], np.float32)
    vertex = _columns(path, ply, "vertex", _VERTEX_PROPERTIES, np.uint32).astype(np.int64)
    n = len(vertex)
    if len(chunk) != -(-n // CHUNK_SIZE):
        raise ValueError(f"{path}: {len(chunk)} chunk rows for {n} Gaussians, expected "
                         f"{-(-n // CHUNK_SIZE)} (one per {CHUNK_SIZE})")
    names = [prop.name for prop in ply["chunk"].properties]
    has_colour_range = "min_r" in names
    if has_colour_range:
        chunk = _columns(path, ply, "chunk", _CHUNK_PROPERTIES, np.float32)
    if not np.isfinite(chunk).all():
        raise ValueError(f"{path}: chunk row {int(np.flatnonzero(~np.isfinite(chunk).all(1))[0])}"
                         f" has a non-finite range, expected finite numbers")
    per_gaussian = chunk[np.arange(n) // CHUNK_SIZE].astype(np.float64)

    def lerp(unit: np.ndarray, first: int) -> np.ndarray:
        low, high = per_gaussian[:, first:first + 3], per_gaussian[:, first + 3:first + 6]
        return low * (1.0 - unit) + high * unit

    colour = np.stack([unpack_unorm(vertex[:, 3] >> shift, 8) for shift in (24, 16, 8, 0)], 1)
    rgb = lerp(colour[:, :3], 12) if has_colour_range else colour[:, :3]
    others = np.stack([unpack_unorm(vertex[:, 1] >> shift, 10) for shift in (20, 10, 0)], 1)
    sh_rest = _sh_bytes(path, ply, n)
    bands = sh_rest.shape[1] // 3
    sh = np.zeros((n, 1 + bands, 3))
    sh[:, 0] = (rgb - 0.5) / SH_C0
    sh[:, 1:] = sh_rest.reshape(n, 3, bands).transpose(0, 2, 1)
    arrays = SceneArrays(
        means=lerp(_unpack_111011(vertex[:, 0]), 0),
        quats=from_smallest_three((vertex[:, 1] >> 30) & 3, (others - 0.5) / np.sqrt(0.5)),
        log_scales=lerp(_unpack_111011(vertex[:, 2]), 6),
        opacities=colour[:, 3],
        sh=sh,
        sh_degree=sh_degree_of(path, bands),
        antialiased=f"{ANTIALIASED_COMMENT} true" in ply.comments,
    )
    return arrays_to_scene(path, arrays)


def _pack_111011(unit: np.ndarray) -> np.ndarray:
    """[N, 3] values in 0..1 -> [N] 11/10/11-bit words (first value in the high bits)."""
    return ((pack_unorm(unit[:, 0], 11) << 21) | (pack_unorm(unit[:, 1], 10) << 11)
            | pack_unorm(unit[:, 2], 11))


def _unpack_111011(words: np.ndarray) -> np.ndarray:
    return np.stack([unpack_unorm(words >> 21, 11), unpack_unorm(words >> 11, 10),
                     unpack_unorm(words, 11)], axis=1)


def _element(name: str, values: np.ndarray, properties, dtype: str) -> PlyElement:
    rows = np.empty(len(values), dtype=[(prop, dtype) for prop in properties])
    for i, prop in enumerate(properties):
        rows[prop] = values[:, i]
    return PlyElement.describe(rows, name)


def _columns(path: str | os.PathLike, ply: PlyData, element: str, properties, dtype) -> np.ndarray:
    """[rows, len(properties)] values of `element`, each property of exactly `dtype`."""
    if element not in ply:
        raise ValueError(f"{path}: no '{element}' element, expected the compressed PLY elements "
                         f"chunk and vertex (elements found: {[e.name for e in ply.elements]})")
    data = ply[element].data
    for prop in properties:
        if prop not in data.dtype.names or data.dtype[prop].str[1:] != np.dtype(dtype).str[1:]:
            raise ValueError(f"{path}: '{element}' property {prop} missing or not "
                             f"{np.dtype(dtype).name}; expected the compressed PLY layout")
    return np.stack([np.asarray(data[prop]) for prop in properties], axis=1) if len(data) else \
        np.zeros((0, len(properties)), dtype=dtype)


def _sh_bytes(path: str | os.PathLike, ply: PlyData, n: int) -> np.ndarray:
    """[N, 3K] decoded f_rest_* values of the optional `sh` element (K = 0 without one)."""
    if "sh" not in ply:
        return np.zeros((n, 0))
    count = len(ply["sh"].properties)
    names = [f"f_rest_{i}" for i in range(count)]
    if count not in (9, 24, 45) or len(ply["sh"].data) != n:
        raise ValueError(f"{path}: 'sh' element of {len(ply['sh'].data)} rows of {count} "
                         f"properties, expected {n} rows of 9, 24 or 45 (SH degree 1..3)")
    codes = _columns(path, ply, "sh", names, np.uint8).astype(np.float64)
    unit = np.where(codes == 0, 0.0, np.where(codes == 255, 1.0, (codes + 0.5) / 256.0))
    return (unit - 0.5) * 8.0

