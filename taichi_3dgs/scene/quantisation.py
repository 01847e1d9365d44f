"""Shared pieces of the quantised web formats (.compressed.ply, .spz, .sog, .glb, .splat).

A scene travels through these formats as `SceneArrays`: float64 numpy arrays of the activated
values the formats store (unit quaternions, sigmoid opacities) beside the raw ones (log scales,
SH coefficients). The helpers here are the pieces several formats share: the 180-degree axis
turns between the 3DGS PLY frame and a format's own frame (positions, quaternions and SH
coefficients together), the "smallest three" quaternion form (PlayCanvas compressed PLY and SOG,
Niantic SPZ v3), Morton ordering (PlayCanvas's writers sort by it so that neighbours share
quantisation ranges), unsigned-normalised packing and the opacity decode of 8-bit alphas.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch

from taichi_3dgs.color_model import MAX_SH_DEGREE, NUM_SH_COEFFS, num_sh_coeffs
from taichi_3dgs.scene.gaussians import GaussianScene, checked_float32
from taichi_3dgs.scene.spherical_harmonics import sh_basis


OPACITY_FLOOR = 0.5 / 255.0
"""Decoded opacities are clamped to [OPACITY_FLOOR, 1 - OPACITY_FLOOR]: half an 8-bit step, the
middle of the bucket that a stored 0 or 255 stands for."""


@dataclass
class SceneArrays:
    """N Gaussians as float64 numpy arrays, in file order.

    Attributes:
        means: [N, 3] centres (scene units).
        quats: [N, 4] unit quaternions w, x, y, z (a zero quaternion becomes (1, 0, 0, 0)).
        log_scales: [N, 3] log standard deviations.
        opacities: [N] sigmoid(opacity_logits), in 0..1.
        sh: [N, 16, 3] SH coefficients (official basis, DC first), zero above `sh_degree`.
        sh_degree: 0..3.
        antialiased: the scene's Mip-Splatting flag.
    """

    means: np.ndarray
    quats: np.ndarray
    log_scales: np.ndarray
    opacities: np.ndarray
    sh: np.ndarray
    sh_degree: int
    antialiased: bool

    def take(self, order: np.ndarray) -> SceneArrays:
        """The rows `order` ([N] int indices) in that order."""
        return SceneArrays(self.means[order], self.quats[order], self.log_scales[order],
                           self.opacities[order], self.sh[order], self.sh_degree, self.antialiased)


def scene_arrays(scene: GaussianScene) -> SceneArrays:
    """`scene` (any device, linear colour, already validated) as `SceneArrays`."""
    scene = scene.to("cpu")
    quats = scene.quats.detach().double().numpy()
    norms = np.linalg.norm(quats, axis=1, keepdims=True)
    quats = np.where(norms > 0, quats / np.where(norms > 0, norms, 1.0), [1.0, 0.0, 0.0, 0.0])
    return SceneArrays(
        means=scene.means.detach().double().numpy(),
        quats=quats,
        log_scales=scene.log_scales.detach().double().numpy(),
        opacities=torch.sigmoid(scene.opacity_logits.detach().double()).numpy(),
        sh=scene.sh_coeffs.detach().double().numpy(),
        sh_degree=scene.sh_degree,
        antialiased=scene.antialiased,
    )


def arrays_to_scene(path: str | os.PathLike, arrays: SceneArrays,
                    opacity_floor: float = OPACITY_FLOOR) -> GaussianScene:
    """Build a linear-colour `GaussianScene` (float32, CPU) from decoded arrays.

    Opacities are turned back into logits after clamping to [opacity_floor, 1 - opacity_floor]
    (an 8-bit alpha of 0 or 255 must not become an infinite logit); `sh` may have fewer than 16
    coefficients (the rest are zero). Quaternions are kept as decoded.

    Raises:
        ValueError: a NaN/inf value, naming `path` and the field (corrupt file).
    """
    n = len(arrays.means)
    sh = np.zeros((n, NUM_SH_COEFFS, 3))
    sh[:, :arrays.sh.shape[1]] = arrays.sh
    sh[:, num_sh_coeffs(arrays.sh_degree):] = 0.0
    opacities = np.clip(arrays.opacities, opacity_floor, 1.0 - opacity_floor)

    def tensor(values: np.ndarray, field: str) -> torch.Tensor:
        flat = checked_float32(np.asarray(values, dtype=np.float64).reshape(-1), str(path), field)
        return torch.from_numpy(flat.reshape(np.shape(values)).copy())

    return GaussianScene(
        means=tensor(arrays.means, "position"),
        quats=tensor(arrays.quats, "rotation"),
        log_scales=tensor(arrays.log_scales, "scale"),
        opacity_logits=tensor(np.log(opacities) - np.log1p(-opacities), "opacity"),
        sh_coeffs=tensor(sh, "colour (SH coefficient)"),
        sh_degree=arrays.sh_degree,
        color_activation="linear",
        antialiased=arrays.antialiased,
    )


def sh_axis_signs(signs: tuple[int, int, int]) -> np.ndarray:
    """[16] signs s_k with Y_k(F d) = s_k Y_k(d) for F = diag(`signs`) (each basis function is
    even or odd in each coordinate; `spherical_harmonics.sh_basis`), so coefficients c_k * s_k
    give the same colours in the frame F."""
    direction = torch.tensor([[0.267, 0.534, 0.802]], dtype=torch.float64)
    before = sh_basis(direction, MAX_SH_DEGREE)[0]
    after = sh_basis(direction * torch.tensor(signs, dtype=torch.float64), MAX_SH_DEGREE)[0]
    return torch.sign(after / before).numpy()


def turn_axes(arrays: SceneArrays, signs: tuple[int, int, int]) -> SceneArrays:
    """The scene turned by F = diag(`signs`), a 180-degree rotation (two signs -1, det F = +1).

    Positions x -> F x; rotations R -> F R F, whose quaternion is (w, F (x, y, z)) (F R F S^2
    F R^T F = F R S^2 R^T F, the covariance turned); SH coefficients times `sh_axis_signs`.
    The turn is its own inverse and exact (sign changes only).

    Raises:
        ValueError: `signs` is not a rotation by 180 degrees about an axis.
    """
    if sorted(signs) != [-1, -1, 1]:
        raise ValueError(f"turn_axes: expected two -1 and one +1, got {signs}")
    flip = np.asarray(signs, dtype=np.float64)
    quats = arrays.quats.copy()
    quats[:, 1:] *= flip
    sh_signs = sh_axis_signs(signs)[None, :arrays.sh.shape[1], None]
    return SceneArrays(arrays.means * flip, quats, arrays.log_scales, arrays.opacities,
                       arrays.sh * sh_signs, arrays.sh_degree, arrays.antialiased)


def morton_order(means: np.ndarray) -> np.ndarray:
    """[N] indices sorting [N, 3] positions along a 3D Morton (Z-order) curve of 1024^3 cells
    over their bounding box (stable for equal codes), as PlayCanvas's writers order Gaussians so
    that each chunk or texture block covers a small region."""
    if len(means) == 0:
        return np.zeros(0, dtype=np.int64)
    low, high = means.min(axis=0), means.max(axis=0)
    extent = np.where(high > low, high - low, 1.0)
    cells = np.clip(((means - low) / extent * 1024.0).astype(np.int64), 0, 1023)
    code = np.zeros(len(means), dtype=np.int64)
    for bit in range(10):
        for axis in range(3):
            code |= ((cells[:, axis] >> bit) & 1) << (3 * bit + 2 - axis)
    return np.argsort(code, kind="stable")


def morton_sorted(scene: GaussianScene) -> tuple[SceneArrays, np.ndarray]:
    """The scene's arrays in `morton_order` of their means, and that [N] int64 order (row i of
    the sorted arrays is the scene's Gaussian order[i]): the file order of PlayCanvas's formats."""
    arrays = scene_arrays(scene)
    order = morton_order(arrays.means)
    return arrays.take(order), order


def smallest_three(quats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The "smallest three" form of [N, 4] unit quaternions (component order as given).

    q and -q are the same rotation, so q is negated where its largest-magnitude component is
    negative; that component is then implied by the unit norm and only the other three are kept,
    each in [-1/sqrt(2), 1/sqrt(2)].

    Returns:
        ([N] int64 index of the largest component, [N, 3] the other components in order).
    """
    largest = np.argmax(np.abs(quats), axis=1)
    sign = np.where(quats[np.arange(len(quats)), largest] < 0, -1.0, 1.0)
    signed = quats * sign[:, None]
    keep = np.ones_like(quats, dtype=bool)
    keep[np.arange(len(quats)), largest] = False
    return largest, signed[keep].reshape(len(quats), 3)


def from_smallest_three(largest: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Inverse of `smallest_three`: [N, 4] quaternions with the largest component
    sqrt(max(0, 1 - |others|^2))."""
    n = len(largest)
    quats = np.zeros((n, 4))
    keep = np.ones((n, 4), dtype=bool)
    keep[np.arange(n), largest] = False
    quats[keep] = others.reshape(-1)
    quats[np.arange(n), largest] = np.sqrt(np.maximum(0.0, 1.0 - (others ** 2).sum(axis=1)))
    return quats


def pack_unorm(values: np.ndarray, bits: int) -> np.ndarray:
    """Values in 0..1 to unsigned `bits`-bit integers, round to nearest, clamped (int64)."""
    top = (1 << bits) - 1
    return np.clip(np.floor(values * top + 0.5), 0, top).astype(np.int64)


def unpack_unorm(codes: np.ndarray, bits: int) -> np.ndarray:
    """Unsigned `bits`-bit integers to 0..1 (float64): code / (2^bits - 1)."""
    return (np.asarray(codes, dtype=np.int64) & ((1 << bits) - 1)) / ((1 << bits) - 1)


def sh_degree_of(path: str | os.PathLike, coeffs_per_channel: int) -> int:
    """The SH degree whose bands above 0 hold `coeffs_per_channel` coefficients per channel.

    Raises:
        ValueError: not 0, 3, 8 or 15 (names `path`).
    """
    for degree in range(MAX_SH_DEGREE + 1):
        if num_sh_coeffs(degree) - 1 == coeffs_per_channel:
            return degree
    raise ValueError(f"{path}: {coeffs_per_channel} SH coefficients per colour channel beyond the "
                     f"DC term, expected 0, 3, 8 or 15 (SH degree 0..3)")


def warn_antialiasing_lost(path: str | os.PathLike, scene: GaussianScene, file_format: str) -> None:
    """Warn that `file_format` cannot record an antialiased `scene`'s Mip-Splatting filter."""
    if scene.antialiased:
        warnings.warn(f"{path}: the scene is antialiased (trained with the Mip-Splatting 2D "
                      f"filter), which the {file_format} format cannot record; {file_format} "
                      f"viewers render it without the filter", stacklevel=3)


def expect_length(path: str | os.PathLike, data: bytes, expected: int, what: str) -> None:
    """Refuse a truncated or over-long payload.

    Raises:
        ValueError: len(data) != expected, naming `path`, `what` and both sizes.
    """
    if len(data) < expected:
        raise ValueError(f"{path}: truncated {what}: {len(data)} bytes, expected {expected}")
    if len(data) > expected:
        raise ValueError(f"{path}: corrupt {what}: {len(data) - expected} bytes after the "
                         f"{expected} that the header announces")


def degree_bands(degree: int) -> int:
    """SH coefficients per channel beyond DC for `degree`: 0, 3, 8, 15."""
    return num_sh_coeffs(degree) - 1



def check_exists(path: str | os.PathLike) -> None:
    """Raises FileNotFoundError naming `path` when it is not a file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")


def read_bytes(path: str | os.PathLike) -> bytes:
    """The whole file.

    Raises:
        FileNotFoundError: `path` does not exist (naming it).
    """
    check_exists(path)
    with open(path, "rb") as file:
        return file.read()
