"""Official 3DGS PLY files (graphdeco-inria `scene/gaussian_model.py::save_ply` / `load_ply`).

One binary little-endian `vertex` element of the 62 float32 properties `PLY_PROPERTIES`, in this
order: `x y z nx ny nz f_dc_0..2 f_rest_0..44 opacity scale_0..2 rot_0..3`. The 45 `f_rest_*` are
the 15 higher SH coefficients (bands 1..3) per channel, stored channel-major (all R coefficients,
then G, then B); normals zero; `opacity` a logit, `scale_*` log std-devs, `rot_*` the quaternion
w, x, y, z (not normalised). graphdeco's `load_ply` asserts 45 `f_rest_*` (its `max_sh_degree` is
3), so a scene of a lower SH degree is written with zeros in the bands it does not have, and its
degree is kept in the header comment `taichi_3dgs sh_degree D` (`SH_DEGREE_COMMENT`). A scene
trained with the Mip-Splatting 2D filter also gets the comment `taichi_3dgs antialiased true`
(`ANTIALIASED_COMMENT`); files without it read as not antialiased.

Other writers' files with 0, 9 or 24 `f_rest_*` properties (degree 0, 1, 2) are read too. The
colour model is the official one (`linear`), so only linear scenes are written; see
`color_conversion.sigmoid_to_linear`.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from numpy.lib import recfunctions
from plyfile import PlyData, PlyElement, PlyParseError

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.color_model import MAX_SH_DEGREE, NUM_SH_COEFFS, num_sh_coeffs
from taichi_3dgs.scene.gaussians import GaussianScene, checked_float32

_NORMALS = ("nx", "ny", "nz")
_F_REST = tuple(f"f_rest_{i}" for i in range(3 * (NUM_SH_COEFFS - 1)))

PLY_PROPERTIES = (
    ("x", "y", "z") + _NORMALS + tuple(f"f_dc_{c}" for c in range(3)) + _F_REST + ("opacity",)
    + tuple(f"scale_{i}" for i in range(3)) + tuple(f"rot_{i}" for i in range(4))
)
"""The 62 float32 vertex properties of the official 3DGS PLY, in file order."""

SH_DEGREE_COMMENT = "taichi_3dgs sh_degree"
"""Header comment `<SH_DEGREE_COMMENT> D` holding the scene's SH degree D (0..3)."""

ANTIALIASED_COMMENT = "taichi_3dgs antialiased"
"""Header comment `<ANTIALIASED_COMMENT> true|false`; written (as true) for antialiased scenes only,
so other scenes keep graphdeco's header plus the degree comment."""

_REQUIRED_PROPERTIES = tuple(name for name in PLY_PROPERTIES if name not in _NORMALS + _F_REST)
# Number of f_rest_* properties for SH degree 0, 1, 2, 3.
_F_REST_COUNTS = {3 * (num_sh_coeffs(degree) - 1): degree for degree in range(MAX_SH_DEGREE + 1)}


def read_ply(path: str | os.PathLike) -> GaussianScene:
    """Read an official 3DGS PLY file into a linear-colour `GaussianScene` on the CPU.

    The file holds 0, 9, 24 or 45 `f_rest_*` properties (bands up to degree 0..3); bands the file
    lacks are zero in `sh_coeffs` ([N, 16, 3] float32). The SH degree is, in this order: the
    header comment `taichi_3dgs sh_degree D` (written by `write_ply`); for a 45-`f_rest_*` file
    without it (graphdeco's own), the highest band with a non-zero coefficient (0 for N = 0); else
    the degree the `f_rest_*` count holds. `antialiased` is the value of the header comment
    `taichi_3dgs antialiased true|false`, False without it. Normals and unknown properties are
    ignored. Quaternions are returned as stored (w, x, y, z, not normalised), so writing the scene
    back reproduces the file's values. N may be 0.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: not a PLY file, no `vertex` element, a missing property, an `f_rest_*` count
            other than 0/9/24/45 or a gap in their numbering, a NaN/inf value (naming the
            property and vertex row), a malformed or repeated `taichi_3dgs sh_degree` or
            `taichi_3dgs antialiased` comment, or a degree comment whose degree the `f_rest_*`
            count cannot hold or that leaves non-zero coefficients above it; the message names
            the file.
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
                         f"official 3DGS layout x y z nx ny nz f_dc_0..2 f_rest_0..44 opacity "
                         f"scale_0..2 rot_0..3")
    num_rest = sum(name.startswith("f_rest_") for name in names)
    if num_rest not in _F_REST_COUNTS:
        raise ValueError(f"{path}: {num_rest} f_rest_* vertex properties, expected 0, 9, 24 or "
                         f"45 (SH degree 0, 1, 2 or 3)")
    gap = [name for name in _F_REST[:num_rest] if name not in names]
    if gap:
        raise ValueError(f"{path}: vertex property {gap[0]} missing; expected f_rest_0.."
                         f"f_rest_{num_rest - 1}")
    comment_degree = _comment_value(path, ply.comments, SH_DEGREE_COMMENT,
                                    [str(d) for d in range(MAX_SH_DEGREE + 1)])
    antialiased = _comment_value(path, ply.comments, ANTIALIASED_COMMENT, ["true", "false"]) == "true"

    def column(name: str) -> torch.Tensor:
        values = checked_float32(np.asarray(vertex[name]), str(path), f"vertex property '{name}'")
        return torch.from_numpy(np.ascontiguousarray(values))

    def stacked(prefix: str, count: int) -> torch.Tensor:
        return torch.stack([column(f"{prefix}{i}") for i in range(count)], dim=1)

    n = len(vertex.data)
    file_degree = _F_REST_COUNTS[num_rest]
    rest_per_channel = num_rest // 3
    sh_coeffs = torch.zeros(n, NUM_SH_COEFFS, 3, dtype=torch.float32)
    sh_coeffs[:, 0, :] = stacked("f_dc_", 3)
    if rest_per_channel:
        sh_coeffs[:, 1:1 + rest_per_channel, :] = (
            stacked("f_rest_", num_rest).reshape(n, 3, rest_per_channel).transpose(1, 2))
    if comment_degree is None:
        sh_degree = _highest_nonzero_band(sh_coeffs) if file_degree == MAX_SH_DEGREE \
            else file_degree
    else:
        sh_degree = int(comment_degree)
        _check_comment_degree(path, sh_degree, file_degree, sh_coeffs)
    return GaussianScene(
        means=torch.stack([column("x"), column("y"), column("z")], dim=1),
        quats=stacked("rot_", 4),
        log_scales=stacked("scale_", 3),
        opacity_logits=column("opacity"),
        sh_coeffs=sh_coeffs,
        sh_degree=sh_degree,
        color_activation="linear",
        antialiased=antialiased,
    )


def write_ply(path: str | os.PathLike, scene: GaussianScene) -> None:
    """Write a linear-colour `scene` as an official 3DGS PLY file, atomically.

    Binary little-endian, the 62 float32 properties `PLY_PROPERTIES` in the official order
    (module docstring) whatever `scene.sh_degree`: bands above it are written as zeros (they are
    zero in the scene), so graphdeco's `load_ply` (which asserts 45 `f_rest_*`) and the viewers
    following it accept the file; normals zero. The degree goes into the header comment
    `taichi_3dgs sh_degree D`, an antialiased scene's flag into `taichi_3dgs antialiased true`.
    Tensors may be on any device; N may be 0 (a header with `element vertex 0`).

    Raises:
        ValueError: `scene.validate()` fails, or the scene uses `sigmoid` colour (the official
            colour model is linear: convert it with
            `taichi_3dgs.scene.color_conversion.sigmoid_to_linear` first). Nothing is written.
        OSError: the file cannot be written; the destination is left untouched.
    """
    check_linear_scene(path, scene, "PLY")
    n = scene.num_gaussians
    sh = scene.sh_coeffs.detach().cpu()
    columns = torch.cat([
        scene.means.detach().cpu(),
        torch.zeros(n, 3),  # normals, zero as graphdeco writes them
        sh[:, 0, :],
        sh[:, 1:, :].transpose(1, 2).reshape(n, len(_F_REST)),
        scene.opacity_logits.detach().cpu().reshape(n, 1),
        scene.log_scales.detach().cpu(),
        scene.quats.detach().cpu(),
    ], dim=1)
    vertices = recfunctions.unstructured_to_structured(
        columns.numpy(), dtype=np.dtype([(name, "<f4") for name in PLY_PROPERTIES]))
    comments = [f"{SH_DEGREE_COMMENT} {scene.sh_degree}"]
    if scene.antialiased:
        comments.append(f"{ANTIALIASED_COMMENT} true")
    ply = PlyData([PlyElement.describe(vertices, "vertex")], text=False, byte_order="<",
                  comments=comments)
    with atomic_path(path) as tmp:
        ply.write(str(tmp))


def check_linear_scene(path: str | os.PathLike, scene: GaussianScene, file_format: str) -> None:
    """Check `scene` before writing it to `path` in a `file_format` of the official linear colour.

    Shared by the PLY and .splat writers (their viewers evaluate colour as max(0, SH + 0.5)).

    Raises:
        ValueError: `scene.validate()` fails, or the scene uses `sigmoid` colour; the message
            names `path` and `taichi_3dgs.scene.color_conversion.sigmoid_to_linear`.
    """
    scene.validate()
    if scene.color_activation != "linear":
        raise ValueError(
            f"{path}: cannot write a '{scene.color_activation}' colour scene as {file_format}, the "
            f"format's colour model is the official 'linear' one; convert it first with "
            f"taichi_3dgs.scene.color_conversion.sigmoid_to_linear (taichi_3dgs.scene.io."
            f"export_scene does this)")


def _comment_value(path: Path, comments: list[str], key: str, allowed: list[str]) -> str | None:
    """The value V of the file's one header comment `<key> V` (one of `allowed`), None without one.

    Raises:
        ValueError: several such comments, or a value not in `allowed` (names the file).
    """
    words = key.split()
    ours = [comment for comment in comments if comment.split()[:len(words)] == words]
    if not ours:
        return None
    expected = f"expected one header comment '{key} V' with V one of {', '.join(allowed)}"
    if len(ours) > 1:
        raise ValueError(f"{path}: header comments {ours}: {expected}")
    value = ours[0].split()[len(words):]
    if len(value) != 1 or value[0] not in allowed:
        raise ValueError(f"{path}: header comment '{ours[0]}': {expected}")
    return value[0]


def _check_comment_degree(path: Path, degree: int, file_degree: int,
                          sh_coeffs: torch.Tensor) -> None:
    """Refuse a comment degree the f_rest_* count cannot hold or with non-zero bands above it."""
    if degree > file_degree:
        raise ValueError(f"{path}: header comment '{SH_DEGREE_COMMENT} {degree}' but only "
                         f"{3 * (num_sh_coeffs(file_degree) - 1)} f_rest_* vertex properties "
                         f"(SH degree {file_degree})")
    above = (sh_coeffs[:, num_sh_coeffs(degree):, :] != 0).flatten(start_dim=1).any(dim=1)
    if bool(above.any()):
        raise ValueError(f"{path}: header comment '{SH_DEGREE_COMMENT} {degree}' but vertex row "
                         f"{int(above.nonzero()[0, 0])} has non-zero f_rest_* coefficients of "
                         f"higher SH bands (expected zeros there)")


def _highest_nonzero_band(sh_coeffs: torch.Tensor) -> int:
    """Highest SH band l with a non-zero coefficient in [N, 16, 3] `sh_coeffs`; 0 if none.

    Band l holds the coefficients l^2 .. (l+1)^2 - 1 (`spherical_harmonics` index order).
    """
    used = (sh_coeffs != 0).any(dim=2).any(dim=0).nonzero()
    return math.isqrt(int(used.max())) if len(used) else 0
