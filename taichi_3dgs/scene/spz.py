""".spz files: Niantic's compressed Gaussian splat format (Scaniverse), version 3.

Layout (github.com/nianticlabs/spz, `load-spz.cc`: `PackedGaussiansHeader`,
`serializePackedGaussians`, `packGaussians`): a gzip stream of a 16-byte little-endian header

    uint32 magic 0x5053474e ("NGSP"), uint32 version, uint32 N,
    uint8 sh_degree, uint8 fractional_bits, uint8 flags (bit 0: antialiased), uint8 reserved

followed by attribute blocks, each for all N Gaussians in turn:

    positions  N x 3 x 3 bytes   24-bit two's-complement fixed point, value * 2^fractional_bits
    alphas     N bytes           round(sigmoid(opacity) * 255)
    colours    N x 3 bytes       round(f_dc * 0.15 * 255 + 127.5)  (DC coefficient, not RGB)
    scales     N x 3 bytes       round((log_scale + 10) * 16)
    rotations  N x 4 bytes       v3: "smallest three" of the unit quaternion in x, y, z, w order,
                                 a uint32: 2 bits index of the largest, then per other component
                                 a sign bit and 9 bits of |q| * sqrt(2) * 511 (v2: 3 bytes x, y, z
                                 of the quaternion with w >= 0, each q * 127.5 + 127.5)
    sh         N x K x 3 bytes   K = 3, 8, 15 coefficients beyond DC, coefficient-major with RGB
                                 inner; round(c * 128) + 128 rounded to buckets of 8 (band 1,
                                 5 bits) or 16 (bands 2-3, 4 bits); decoded (b - 128) / 128

all values clamped to 0..255. The frame on disk is "RUB" (x right, y up, z back): a 3DGS PLY
scene ("RDF", the COLMAP / OpenCV camera convention) is turned by 180 degrees about x on the way
(`quantisation.turn_axes` with signs (1, -1, -1)), as Niantic's library and PlayCanvas's
splat-transform do. Version 3 is written (the gzip form that every current reader takes:
Niantic's library, splat-transform, SuperSplat, Spark); versions 2 and 3 are read. Version 4
(a different, non-gzip container) and files using SPZ extensions are refused, saying so. Bands
up to 3 and the antialiased flag are kept; the colour model is the official linear one.
"""
from __future__ import annotations

import gzip
import os
import struct
import zlib

import numpy as np

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.ply import check_linear_scene
from taichi_3dgs.scene.quantisation import (SceneArrays, arrays_to_scene, degree_bands,
                                            expect_length, from_smallest_three, read_bytes,
                                            scene_arrays, smallest_three, turn_axes)

SPZ_MAGIC = 0x5053474E
"""The header's first uint32, "NGSP" in little-endian bytes."""

SPZ_VERSION = 3
"""The version `write_spz` writes."""

_HEADER = struct.Struct("<IIIBBBB")
_RUB = (1, -1, -1)  # the turn between the PLY frame (RDF) and SPZ's RUB
_COLOUR_SCALE = 0.15  # load-spz.cc colorScale: DC coefficients, wider than 0..1 colours
_FLAG_ANTIALIASED = 0x1
_FLAG_EXTENSIONS = 0x2
_MAX_FRACTIONAL_BITS = 12  # ~0.24 mm steps in metres, Niantic's choice


def write_spz(path: str | os.PathLike, scene: GaussianScene) -> None:
    """Write a linear-colour `scene` as a version-3 .spz file, atomically (module docstring).

    Positions use 12 fractional bits (steps of 1/4096 scene units) when the scene fits the 24-bit
    range (|x| < 2048), else the most bits that fit. SH bands up to `scene.sh_degree` are
    written; the antialiased flag goes into the header. Gaussians keep the scene's order.

    Raises:
        ValueError: `scene.validate()` fails, the scene uses `sigmoid` colour, or a position is
            too far from the origin for 24-bit fixed point (|x| >= 2^23). Nothing is written.
        OSError: the file cannot be written; the destination is left untouched.
    """
    check_linear_scene(path, scene, ".spz")
    arrays = turn_axes(scene_arrays(scene), _RUB)
    n = len(arrays.means)
    extent = float(np.abs(arrays.means).max()) if n else 0.0
    if extent >= 2 ** 23:
        raise ValueError(f"{path}: a position is {extent:.3g} scene units from the origin, beyond "
                         f"the 24-bit fixed-point range of .spz (2^23 units); move the scene "
                         f"towards the origin or scale it down")
    fractional_bits = _MAX_FRACTIONAL_BITS
    while fractional_bits > 0 and extent * 2 ** fractional_bits >= 2 ** 23 - 1:
        fractional_bits -= 1
    fixed = np.round(arrays.means * 2 ** fractional_bits).astype(np.int64) & 0xFFFFFF
    positions = np.stack([(fixed >> shift) & 0xFF for shift in (0, 8, 16)], axis=-1)
    largest, others = smallest_three(arrays.quats[:, [1, 2, 3, 0]])
    magnitude = np.minimum(np.floor(np.abs(others) * np.sqrt(2.0) * 511 + 0.5), 511)
    magnitude = magnitude.astype(np.int64)
    packed = largest.copy()
    for i in range(3):
        packed = (packed << 10) | (np.signbit(others[:, i]).astype(np.int64) << 9) | magnitude[:, i]
    rotations = np.stack([(packed >> shift) & 0xFF for shift in (0, 8, 16, 24)], axis=-1)
    bands = degree_bands(arrays.sh_degree)
    sh = np.round(arrays.sh[:, 1:1 + bands] * 128.0) + 128.0
    bucket = np.where(np.arange(bands) < 3, 8, 16)[None, :, None]
    sh = (sh + bucket // 2) // bucket * bucket
    flags = _FLAG_ANTIALIASED if arrays.antialiased else 0
    body = b"".join([
        _HEADER.pack(SPZ_MAGIC, SPZ_VERSION, n, arrays.sh_degree, fractional_bits, flags, 0),
        _bytes(positions),
        _bytes(arrays.opacities * 255.0),
        _bytes(arrays.sh[:, 0] * (_COLOUR_SCALE * 255.0) + 127.5),
        _bytes((arrays.log_scales + 10.0) * 16.0),
        _bytes(rotations),
        _bytes(sh),
    ])
    with atomic_path(path) as tmp:
        tmp.write_bytes(gzip.compress(body, compresslevel=9, mtime=0))


def read_spz(path: str | os.PathLike) -> GaussianScene:
    """Read a version-2 or -3 .spz file into a linear-colour `GaussianScene` on the CPU.

    Decoding inverts the module docstring's quantisation (opacities clamped to half a step from
    0 and 1, `quantisation.OPACITY_FLOOR`) and turns the scene from RUB back to the PLY frame.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: not a gzip stream, a truncated or corrupt stream, a wrong magic number, a
            version other than 2 or 3, an SH degree above 3, SPZ extensions, or a payload size
            that does not match the header; the message names the file.
    """
    raw = read_bytes(path)
    if raw[:4] == struct.pack("<I", SPZ_MAGIC):
        raise ValueError(f"{path}: an SPZ version-4 (uncompressed NGSP container) file, expected "
                         f"the gzip-compressed version 2 or 3 (splat-transform writes it with "
                         f"--spz-version 3)")
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as error:
        raise ValueError(f"{path}: not a readable .spz file (expected a gzip stream: "
                         f"{error})") from error
    if len(data) < _HEADER.size:
        raise ValueError(f"{path}: truncated .spz header: {len(data)} bytes, expected "
                         f"{_HEADER.size}")
    magic, version, n, degree, fractional_bits, flags, _ = _HEADER.unpack_from(data)
    if magic != SPZ_MAGIC:
        raise ValueError(f"{path}: not an .spz file (magic number {magic:#010x}, expected "
                         f"{SPZ_MAGIC:#010x} 'NGSP')")
    if version not in (2, 3):
        raise ValueError(f"{path}: .spz version {version}, expected 2 or 3")
    if degree > 3:
        raise ValueError(f"{path}: .spz SH degree {degree}, expected 0..3")
    if flags & _FLAG_EXTENSIONS:
        raise ValueError(f"{path}: the .spz file uses SPZ extensions, which are not supported")
    bands = degree_bands(degree)
    rotation_bytes = 4 if version >= 3 else 3
    sizes = [9 * n, n, 3 * n, 3 * n, rotation_bytes * n, 3 * bands * n]
    expect_length(path, data, _HEADER.size + sum(sizes), f".spz payload of {n} Gaussians")
    blocks = np.split(np.frombuffer(data, dtype=np.uint8, offset=_HEADER.size),
                      np.cumsum(sizes)[:-1])
    positions, alphas, colours, scales, rotations, sh = [b.astype(np.int64) for b in blocks]
    positions = positions.reshape(n, 3, 3)
    fixed = positions[..., 0] | (positions[..., 1] << 8) | (positions[..., 2] << 16)
    fixed = np.where(fixed & 0x800000, fixed - (1 << 24), fixed)
    coeffs = np.zeros((n, 1 + bands, 3))
    coeffs[:, 0] = (colours.reshape(n, 3) / 255.0 - 0.5) / _COLOUR_SCALE
    coeffs[:, 1:] = (sh.reshape(n, bands, 3) - 128.0) / 128.0
    arrays = SceneArrays(
        means=fixed / 2.0 ** fractional_bits,
        quats=_decode_rotations(rotations.reshape(n, rotation_bytes)),
        log_scales=scales.reshape(n, 3) / 16.0 - 10.0,
        opacities=alphas / 255.0,
        sh=coeffs,
        sh_degree=degree,
        antialiased=bool(flags & _FLAG_ANTIALIASED),
    )
    return arrays_to_scene(path, turn_axes(arrays, _RUB))


def _decode_rotations(rotations: np.ndarray) -> np.ndarray:
    """[N, 4] (v3) or [N, 3] (v2) rotation bytes -> [N, 4] quaternions w, x, y, z."""
    if rotations.shape[1] == 3:
        xyz = rotations / 127.5 - 1.0
        w = np.sqrt(np.maximum(0.0, 1.0 - (xyz ** 2).sum(axis=1)))
        return np.concatenate([w[:, None], xyz], axis=1)
    packed = sum(rotations[:, i] << (8 * i) for i in range(4))
    others = np.zeros((len(packed), 3))
    for i in (2, 1, 0):
        magnitude = (packed & 511) / (511 * np.sqrt(2.0))
        others[:, i] = np.where((packed >> 9) & 1, -magnitude, magnitude)
        packed = packed >> 10
    xyzw = from_smallest_three(packed & 3, others)
    return xyzw[:, [3, 0, 1, 2]]


def _bytes(values: np.ndarray) -> bytes:
    """Round to nearest and clamp to 0..255, as uint8 bytes in C order."""
    return np.clip(np.round(values), 0, 255).astype(np.uint8).tobytes()

