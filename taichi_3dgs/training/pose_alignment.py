"""Photometric alignment of one camera to the current scene: a damped Gauss-Newton solve of its pose.

The per-camera step of direct image alignment (Lucas & Kanade 1981; Levenberg-Marquardt as in
bundle adjustment, Triggs et al. 2000, section 4.3; photometric pose refinement as in DSO, Engel et
al. 2018). The scene is held fixed; the camera's 6-vector correction d (`pose_corrections`: t /
scene extent, rotation vector w in radians, camera frame) minimises the mean squared residual
E(d) = mean_p r_p(d)^2 of the render against the photo. Each iteration linearises the residual by
forward differences along the six coordinates, J[k] = (r(d + h_k e_k) - r(d)) / h_k, and tries the
Levenberg-Marquardt step

    delta = -(J J^T + lambda diag(J J^T))^-1 J r,

accepted only where it lowers E (lambda then falls tenfold, else it grows tenfold and the step is
tried again). Unlike Adam's normalised steps, whose size is about the learning rate whatever the
gradient, the step is the error the image shows: about zero for a camera the scene already fits,
the whole offset for one it does not. `gain` (the relative drop of E) tells the two apart.

`align_cameras` aligns every training camera: first its turn alone, then all six coordinates
(a small turn and a sideways shift move the image alike, and solving for both at once from a
1-degree error slides along that valley: on a colmap_desk scene trained from the true cameras, 12
joint iterations left 12 of 25 cameras given 1-degree errors over 0.8 degrees off, 4 + 4 with the
turn first 2 of 25, BENCHMARKS.md), and keeps the result only
where it lowers the camera's error against its pose as given by `min_gain` (a significance test:
a good pose stays exactly as given, as it would without pose optimisation).
"""
from __future__ import annotations

from typing import Callable, NamedTuple, Sequence

import torch

# Levenberg-Marquardt damping: start, floor, and the ceiling at which the solve gives up (no step
# along any direction lowers E: the camera is at a minimum as far as the residual can tell).
INITIAL_DAMPING = 1e-3
MIN_DAMPING = 1e-6
MAX_DAMPING = 1e4
# Forward-difference step of every coordinate, learnt units (0.1 % of the scene extent, 1 mrad =
# 0.057 degrees: a fifth of a pixel at a focal length of 200 pixels), and the linearisations of
# each of the two solves of `align_cameras`.
FINITE_STEP = 1e-3
ITERATIONS = 4
TURN = (3, 4, 5)


class Alignment(NamedTuple):
    """The result of `align_camera`.

    Attributes:
        correction: [6] float32, the aligned correction (as the input's device).
        initial_error, error: E before and after (mean squared residual, image units squared).
        renders: how many renders the solve took.
    """

    correction: torch.Tensor
    initial_error: float
    error: float
    renders: int

    @property
    def gain(self) -> float:
        """The relative drop of the error, 1 - error / initial_error, in [0, 1] (0 for an exact fit)."""
        return 0.0 if self.initial_error <= 0.0 else 1.0 - self.error / self.initial_error


def align_camera(residual: Callable[[torch.Tensor], torch.Tensor], correction: torch.Tensor,
                 finite_steps: torch.Tensor, iterations: int, coordinates: Sequence[int] = range(6)) -> Alignment:
    """Levenberg-Marquardt iterations on one camera's pose correction (module docstring).

    Args:
        residual: maps a [6] float32 correction to the flattened residual [M] float32 (render minus
            photo, ignored pixels zero) of the scene rendered from the camera so corrected; called
            without gradients.
        correction: [6] float32, the starting correction (not modified).
        finite_steps: [6] float32 h_k > 0, the forward-difference step of each coordinate (learnt units).
        iterations: Gauss-Newton linearisations (>= 1); each costs one render per coordinate, and
            one per tried step.
        coordinates: the indices of the coordinates solved for (the others stay as they are):
            (3, 4, 5) solves for the turn alone.

    Returns:
        `Alignment`; its correction is the input's when no step lowered E.
    """
    with torch.no_grad():
        current = correction.detach().clone()
        residuals = residual(current)
        initial_error = error = float(residuals.double().square().mean())
        renders, damping = 1, INITIAL_DAMPING
        for _ in range(iterations):
            columns = []
            for k in coordinates:
                probe = current.clone()
                probe[k] += finite_steps[k]
                columns.append((residual(probe) - residuals).double() / float(finite_steps[k]))
            renders += len(columns)
            jacobian = torch.stack(columns)  # [6, M]
            hessian, gradient = jacobian @ jacobian.T, jacobian @ residuals.double()
            improved = False
            while damping <= MAX_DAMPING:
                system = hessian + damping * torch.diag(torch.diagonal(hessian).clamp_min(1e-12))
                trial = current.clone()
                trial[list(coordinates)] -= torch.linalg.solve(system, gradient).to(current.dtype)
                trial_residuals = residual(trial)
                renders += 1
                trial_error = float(trial_residuals.double().square().mean())
                if trial_error < error:
                    current, residuals, error = trial, trial_residuals, trial_error
                    damping = max(damping / 10.0, MIN_DAMPING)
                    improved = True
                    break
                damping *= 10.0
            if not improved:
                break
    return Alignment(current, initial_error, error, renders)


class AlignmentSummary(NamedTuple):
    """What `align_cameras` did: `gains[i]`, camera i's `Alignment.gain` against its pose as given;
    `kept` of them were at least min_gain, whose corrections were kept (the others reset to zero);
    the `renders` it took."""

    gains: tuple[float, ...]
    kept: int
    renders: int


def align_cameras(corrections: torch.Tensor, residual_for: Callable[[int], Callable[[torch.Tensor], torch.Tensor]],
                  min_gain: float) -> AlignmentSummary:
    """Align every camera to the scene: the turn, then all six coordinates, from its current
    correction; keep the result where its error is at most (1 - min_gain) x the error of the pose
    as given (zero correction), else reset the correction to zero (module docstring).

    Args:
        corrections: [C, 6] float32 pose corrections (`pose_corrections`), updated in place.
        residual_for: camera index -> its `residual` function for `align_camera`.
        min_gain: in [0, 1).

    Returns:
        `AlignmentSummary`.
    """
    steps = torch.full((6,), FINITE_STEP, dtype=corrections.dtype, device=corrections.device)
    kept, renders, gains = 0, 0, []
    for index in range(corrections.shape[0]):
        residual = residual_for(index)
        start = corrections[index].detach().clone()
        turned = align_camera(residual, start, steps, ITERATIONS, TURN)
        aligned = align_camera(residual, turned.correction, steps, ITERATIONS)
        renders += turned.renders + aligned.renders
        given_error = turned.initial_error
        if bool(start.any()):
            with torch.no_grad():
                given_error = float(residual(torch.zeros_like(start)).double().square().mean())
            renders += 1
        gain = Alignment(aligned.correction, given_error, aligned.error, 0).gain
        gains.append(gain)
        keep = gain >= min_gain
        kept += keep
        with torch.no_grad():
            corrections[index] = aligned.correction if keep else 0.0
    return AlignmentSummary(tuple(gains), kept, renders)
