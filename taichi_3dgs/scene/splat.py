""".splat files: the compact 32-byte-per-Gaussian format of antimatter15's WebGL viewer.

Layout (github.com/antimatter15/splat, `convert.py::process_ply_to_splat` and
`main.js::processPlyBuffer`; `main.js` also decodes it): no header, one 32-byte record per Gaussian, little-endian,

    float32 x, y, z           position, world frame (scene units)
    float32 sx, sy, sz        scales = exp(log_scales), linear std-devs (scene units)
    uint8   r, g, b, a        clamp(0.5 + SH_C0 * f_dc, 0, 1) * 255 and sigmoid(opacity) * 255
    uint8   w, x, y, z        normalised quaternion q mapped to q * 128 + 128, clamped to 0..255

rounded to nearest (ties to even, as `main.js` stores them through a `Uint8ClampedArray`;
`convert.py` truncates instead, up to a whole step low). Records are sorted by descending
importance exp(sum log_scales) * sigmoid(opacity) (the sort of both sources; ties keep the scene's
order). Only the DC colour survives: view-dependent SH bands are dropped, and so is the scene's
`antialiased` flag (no room for it: a warning says so). The colour is the official `linear`
model, so only linear scenes are written; see `color_conversion.sigmoid_to_linear`.
`read_splat` decodes such a file (any record order) as antimatter15's `main.js` and
PlayCanvas's splat-transform do.
"""
from __future__ import annotations

import os

import numpy as np
import torch

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.color_model import SH_C0
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.ply import check_linear_scene
from taichi_3dgs.scene.quantisation import (SceneArrays, arrays_to_scene, read_bytes,
                                            warn_antialiasing_lost)

SPLAT_RECORD = np.dtype([("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4),
                         ("rotation", "u1", 4)])
"""One Gaussian of a .splat file (32 bytes, module docstring)."""

_SCALE_RANGE = (1e-20, 1e20)  # plausible |positions| and scales: beyond, the bytes are foreign


@torch.no_grad()
def write_splat(path: str | os.PathLike, scene: GaussianScene) -> np.ndarray:
    """Write a linear-colour `scene` as an antimatter15 .splat file, atomically.

    Layout, quantisation and order: module docstring (32 * N bytes, records sorted by descending
    exp(sum log_scales) * sigmoid(opacity_logits)). Scales, colours, opacities and the importance
    are computed in float64 and rounded once. A zero quaternion is written as (128, 128, 128, 128).
    Tensors may be on any device; N may be 0 (an empty file). An antialiased scene is written
    with a warning: the format cannot record the Mip-Splatting 2D filter, so its viewers render
    the scene without it.

    Raises:
        ValueError: `scene.validate()` fails, or the scene uses `sigmoid` colour (the format's
            colour model is linear: convert it with
            `taichi_3dgs.scene.color_conversion.sigmoid_to_linear` first). Nothing is written.
        OSError: the file cannot be written; the destination is left untouched.
    """
    check_linear_scene(path, scene, ".splat")
    warn_antialiasing_lost(path, scene, ".splat")
    scene = scene.to("cpu")
    log_scales = scene.log_scales.double()
    opacities = torch.sigmoid(scene.opacity_logits.double())
    order = torch.sort(torch.exp(log_scales.sum(dim=1)) * opacities, descending=True,
                       stable=True).indices
    rgba = torch.cat([(0.5 + SH_C0 * scene.sh_coeffs[:, 0, :].double()).clamp(0.0, 1.0),
                      opacities[:, None]], dim=1) * 255.0
    rotation = torch.nn.functional.normalize(scene.quats.double(), dim=1) * 128.0 + 128.0
    records = np.empty(scene.num_gaussians, dtype=SPLAT_RECORD)
    records["position"] = scene.means[order].numpy()
    records["scale"] = torch.exp(log_scales[order]).float().numpy()
    records["rgba"] = _to_uint8(rgba[order])
    records["rotation"] = _to_uint8(rotation[order])
    with atomic_path(path) as tmp:
        tmp.write_bytes(records.tobytes())
    return order.numpy()


def read_splat(path: str | os.PathLike) -> GaussianScene:
    """Read an antimatter15 .splat file into a linear-colour `GaussianScene` on the CPU.

    Each record decodes to: the position; log of the scales; DC coefficient (c / 255 - 0.5) /
    SH_C0; opacity a / 255 (clamped half a step from 0 and 1, `quantisation.OPACITY_FLOOR`);
    quaternion (b - 128) / 128, normalised ((1, 0, 0, 0) if zero). SH degree 0, not
    antialiased (the format records neither). An empty file is a scene of no Gaussians.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: a size that is not a multiple of 32 bytes (truncated or not a .splat file),
            or an implausible record (a position beyond 1e20 in magnitude or non-finite, a scale
            outside 1e-20..1e20), the only sign of a foreign file in this headerless format;
            names the file.
    """
    data = read_bytes(path)
    if len(data) % SPLAT_RECORD.itemsize:
        raise ValueError(f"{path}: {len(data)} bytes, not a whole number of 32-byte .splat "
                         f"records (truncated, or not a .splat file)")
    records = np.frombuffer(data, dtype=SPLAT_RECORD)
    scales = records["scale"].astype(np.float64)
    means = records["position"].astype(np.float64)
    # No header or magic number: implausible values are the only sign of a foreign file.
    plausible = ((scales > _SCALE_RANGE[0]) & (scales < _SCALE_RANGE[1])).all(axis=1) \
        & (np.abs(means) < _SCALE_RANGE[1]).all(axis=1)
    if not plausible.all():
        row = int(np.flatnonzero(~plausible)[0])
        raise ValueError(f"{path}: record {row} has position {means[row].tolist()} and scale "
                         f"{scales[row].tolist()}, expected finite positions and positive "
                         f"scales within {_SCALE_RANGE[0]:g}..{_SCALE_RANGE[1]:g} (truncated, "
                         f"or not a .splat file)")
    rgba = records["rgba"].astype(np.float64) / 255.0
    quats = (records["rotation"].astype(np.float64) - 128.0) / 128.0
    norms = np.linalg.norm(quats, axis=1, keepdims=True)
    quats = np.where(norms > 0, quats / np.where(norms > 0, norms, 1.0), [1.0, 0.0, 0.0, 0.0])
    arrays = SceneArrays(
        means=means, quats=quats, log_scales=np.log(scales),
        opacities=rgba[:, 3], sh=((rgba[:, :3] - 0.5) / SH_C0)[:, None, :], sh_degree=0,
        antialiased=False)
    return arrays_to_scene(path, arrays)


def _to_uint8(values: torch.Tensor) -> np.ndarray:
    """Round to nearest (ties to even) and clamp to 0..255, as a `Uint8ClampedArray` stores."""
    return torch.round(values).clamp(0, 255).to(torch.uint8).numpy()
