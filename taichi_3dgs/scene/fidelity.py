"""How far a scene read back from a quantised file is from the scene that was written.

Per attribute, in the units a user can judge: positions in scene units and relative to the
scene's size, scales as relative error exp(|d log s|) - 1, rotations as the angle between the
two orientations, opacities after the sigmoid and colours as 0..1 RGB of the DC term
(SH_C0 * d f_dc), higher SH bands as coefficient differences (bands the file lacks count in
full). Each is reported as (mean, max) over the Gaussians' values.
"""
from __future__ import annotations

import numpy as np

from taichi_3dgs.color_model import NUM_SH_COEFFS, SH_C0
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.quantisation import scene_arrays


def round_trip_errors(written: GaussianScene, read: GaussianScene,
                      order: np.ndarray | None = None) -> dict[str, tuple[float, float]]:
    """(mean, max) absolute error per attribute of `read` against `written`.

    Args:
        written: the scene that was written (linear colour).
        read: the scene read back from the file.
        order: [N] file order returned by the writer (row i of `read` is `written`'s row
            `order[i]`), or None when the file keeps the scene's order.

    Returns:
        {"position": scene units, "position / scene size": fraction of the bounding box's
        diagonal, "scale (relative)": fraction, "rotation (degrees)", "opacity": 0..1,
        "colour (DC, 0..1)", "SH bands 1-3 (coefficient)" (only for a scene with SH degree > 0)}.

    Raises:
        ValueError: the two scenes hold different numbers of Gaussians.
    """
    if written.num_gaussians != read.num_gaussians:
        raise ValueError(f"round_trip_errors: {written.num_gaussians} Gaussians written but "
                         f"{read.num_gaussians} read back")
    before, after = scene_arrays(written), scene_arrays(read)
    if order is not None:
        before = before.take(order)
    if len(before.means) == 0:
        return {}
    position = np.linalg.norm(after.means - before.means, axis=1)
    diagonal = float(np.linalg.norm(before.means.max(0) - before.means.min(0))) or 1.0
    cosine = np.clip(np.abs((after.quats * before.quats).sum(axis=1)), 0.0, 1.0)
    errors = {
        "position": position,
        "position / scene size": position / diagonal,
        "scale (relative)": np.expm1(np.abs(after.log_scales - before.log_scales)),
        "rotation (degrees)": np.degrees(2.0 * np.arccos(cosine)),
        "opacity": np.abs(after.opacities - before.opacities),
        "colour (DC, 0..1)": SH_C0 * np.abs(after.sh[:, 0] - before.sh[:, 0]),
    }
    if written.sh_degree > 0:
        errors["SH bands 1-3 (coefficient)"] = np.abs(after.sh[:, 1:NUM_SH_COEFFS]
                                                      - before.sh[:, 1:NUM_SH_COEFFS])[
            :, :(written.sh_degree + 1) ** 2 - 1]
    return {name: (float(values.mean()), float(values.max())) for name, values in errors.items()}
