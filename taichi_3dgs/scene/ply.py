"""Official 3DGS PLY files (graphdeco-inria `scene/gaussian_model.py::save_ply` / `load_ply`).

One binary little-endian `vertex` element of float32 properties, in this order:
`x y z nx ny nz f_dc_0..2 f_rest_0..(3K-1) opacity scale_0..2 rot_0..3` with K = (degree+1)^2 - 1
higher SH coefficients per channel (K = 15 for degree 3: `f_rest_0..44`), stored channel-major
(all R coefficients, then G, then B); normals zero; `opacity` a logit, `scale_*` log std-devs,
`rot_*` the quaternion w, x, y, z (not normalised). The colour model is the official one
(`linear`), so only linear scenes are written; see `color_conversion.sigmoid_to_linear`.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from numpy.lib import recfunctions
from plyfile import PlyData, PlyElement, PlyParseError

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.scene.gaussians import NUM_SH_COEFFS, GaussianScene, checked_float32
from taichi_3dgs.scene.spherical_harmonics import MAX_SH_DEGREE, num_sh_coeffs

_REQUIRED_PROPERTIES = (
    ["x", "y", "z"] + [f"f_dc_{c}" for c in range(3)] + ["opacity"]
    + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)]
)
# Number of f_rest_* properties for SH degree 0, 1, 2, 3.
_F_REST_COUNTS = {3 * (num_sh_coeffs(degree) - 1): degree for degree in range(MAX_SH_DEGREE + 1)}


def read_ply(path: str | os.PathLike) -> GaussianScene:
    """Read an official 3DGS PLY file into a linear-colour `GaussianScene` on the CPU.

    The SH degree follows from the number of `f_rest_*` properties (0, 9, 24, 45 -> 0..3);
    bands above it are zero. Normals and unknown properties are ignored. Quaternions are returned
    as stored (w, x, y, z, not normalised), so writing the scene back reproduces the file's values.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: not a PLY file, no `vertex` element, a missing property, an `f_rest_*` count
            other than 0/9/24/45 or a gap in their numbering, or a NaN/inf value (naming the
            property and vertex row); the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such PLY file")
    try:
        # mmap=False: the arrays must not keep the file open (it may be replaced next).
        ply = PlyData.read(str(path), mmap=False)
    except (PlyParseError, ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable PLY file ({error})") from error
    if "vertex" not in ply:
        raise ValueError(f"{path}: no 'vertex' element, expected the 3DGS vertex element "
                         f"(elements found: {[element.name for element in ply.elements]})")
    vertex = ply["vertex"]
    names = [prop.name for prop in vertex.properties]
    missing = [name for name in _REQUIRED_PROPERTIES if name not in names]
    if missing:
        raise ValueError(f"{path}: vertex property {', '.join(missing)} missing; expected the "
                         f"official 3DGS layout x y z nx ny nz f_dc_0..2 f_rest_* opacity "
                         f"scale_0..2 rot_0..3")
    num_rest = sum(name.startswith("f_rest_") for name in names)
    if num_rest not in _F_REST_COUNTS:
        raise ValueError(f"{path}: {num_rest} f_rest_* vertex properties, expected 0, 9, 24 or "
                         f"45 (SH degree 0, 1, 2 or 3)")
    rest_names = [f"f_rest_{i}" for i in range(num_rest)]
    gap = [name for name in rest_names if name not in names]
    if gap:
        raise ValueError(f"{path}: vertex property {gap[0]} missing; expected f_rest_0.."
                         f"f_rest_{num_rest - 1}")

    def column(name: str) -> torch.Tensor:
        values = checked_float32(np.asarray(vertex[name]), str(path), f"vertex property '{name}'")
        return torch.from_numpy(np.ascontiguousarray(values))

    def stacked(prefix: str, count: int) -> torch.Tensor:
        return torch.stack([column(f"{prefix}{i}") for i in range(count)], dim=1)

    n = len(vertex.data)
    sh_degree = _F_REST_COUNTS[num_rest]
    rest_per_channel = num_rest // 3
    sh_coeffs = torch.zeros(n, NUM_SH_COEFFS, 3, dtype=torch.float32)
    sh_coeffs[:, 0, :] = stacked("f_dc_", 3)
    if rest_per_channel:
        sh_coeffs[:, 1:1 + rest_per_channel, :] = (
            stacked("f_rest_", num_rest).reshape(n, 3, rest_per_channel).transpose(1, 2))
    return GaussianScene(
        means=torch.stack([column("x"), column("y"), column("z")], dim=1),
        quats=stacked("rot_", 4),
        log_scales=stacked("scale_", 3),
        opacity_logits=column("opacity"),
        sh_coeffs=sh_coeffs,
        sh_degree=sh_degree,
        color_activation="linear",
    )


def write_ply(path: str | os.PathLike, scene: GaussianScene) -> None:
    """Write a linear-colour `scene` as an official 3DGS PLY file, atomically.

    Binary little-endian float32, properties in the official order (module docstring), with
    3 * ((sh_degree + 1)^2 - 1) `f_rest_*` properties as graphdeco's `save_ply` writes for its
    `max_sh_degree`; normals zero. Tensors may be on any device.

    Raises:
        ValueError: `scene.validate()` fails, or the scene uses `sigmoid` colour (the official
            colour model is linear: convert it with
            `taichi_3dgs.scene.color_conversion.sigmoid_to_linear` first). Nothing is written.
        OSError: the file cannot be written; the destination is left untouched.
    """
    scene.validate()
    if scene.color_activation != "linear":
        raise ValueError(
            f"{path}: cannot write a '{scene.color_activation}' colour scene as PLY, the official "
            f"format is 'linear' colour; convert it first with "
            f"taichi_3dgs.scene.color_conversion.sigmoid_to_linear (parquet_to_ply.py does this)")
    n = scene.num_gaussians
    rest_per_channel = num_sh_coeffs(scene.sh_degree) - 1
    sh = scene.sh_coeffs.detach().cpu()
    columns = torch.cat([
        scene.means.detach().cpu(),
        torch.zeros(n, 3),  # normals, zero as graphdeco writes them
        sh[:, 0, :],
        sh[:, 1:1 + rest_per_channel, :].transpose(1, 2).reshape(n, 3 * rest_per_channel),
        scene.opacity_logits.detach().cpu().reshape(n, 1),
        scene.log_scales.detach().cpu(),
        scene.quats.detach().cpu(),
    ], dim=1)
    names = (["x", "y", "z", "nx", "ny", "nz"] + [f"f_dc_{c}" for c in range(3)]
             + [f"f_rest_{i}" for i in range(3 * rest_per_channel)] + ["opacity"]
             + [f"scale_{i}" for i in range(3)] + [f"rot_{i}" for i in range(4)])
    vertices = recfunctions.unstructured_to_structured(
        columns.numpy(), dtype=np.dtype([(name, "<f4") for name in names]))
    ply = PlyData([PlyElement.describe(vertices, "vertex")], text=False, byte_order="<")
    with atomic_path(path) as tmp:
        ply.write(str(tmp))
