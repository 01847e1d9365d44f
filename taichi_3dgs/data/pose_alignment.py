"""Comparing two sets of camera poses of the same images: errors, and the similarity between them.

Cameras reconstructed from images alone (structure from motion, or poses refined together with the
scene) are defined only up to a similarity transform of the world: moving, turning or scaling the
cameras and the scene together changes no image. To compare them with other poses of the same
images, or to put them into another frame, they are first aligned by the similarity that best maps
their cameras onto the others (BARF, Lin et al. 2021, aligns by Procrustes likewise).

Poses are `CameraRecord.T_pointcloud_camera`: [4, 4] float64 camera-to-world, OpenCV axes.
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np
from scipy.spatial.transform import Rotation

from taichi_3dgs.data.cameras import CameraRecord


def pose_errors(records: Sequence[CameraRecord], reference: Sequence[CameraRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Per camera: the angle of R_ref^T R and the distance between the camera centres.

    Args:
        records, reference: poses of the same images in the same order (world frames as they are,
            nothing aligned).

    Returns:
        [N] float64 rotation errors in degrees, [N] float64 centre distances in world units.
    """
    rotation, translation = [], []
    for record, truth in zip(records, reference):
        relative = truth.T_pointcloud_camera[:3, :3].T @ record.T_pointcloud_camera[:3, :3]
        rotation.append(np.degrees(Rotation.from_matrix(relative).magnitude()))
        translation.append(np.linalg.norm(record.camera_center - truth.camera_center))
    return np.array(rotation), np.array(translation)


def fit_similarity(records: Sequence[CameraRecord],
                   reference: Sequence[CameraRecord]) -> tuple[float, np.ndarray, np.ndarray]:
    """The similarity x -> s R x + t that best maps the cameras of `records` onto the reference.

    R is the chordal mean of the cameras' relative rotations R_ref,i R_i^T (scipy `Rotation.mean`;
    the camera centres of a video path are nearly on a line and would leave the turn about it
    undetermined), then s and t by least squares of the centres given R (Umeyama 1991's closed
    form: s = sum y . R x / sum |x|^2 on the centred centres).

    Args:
        records, reference: poses of the same images in the same order, at least 2 with distinct
            centres.

    Returns:
        s (float), R ([3, 3] float64 rotation), t ([3] float64, reference units).
    """
    relative = Rotation.from_matrix(np.array([truth.T_pointcloud_camera[:3, :3] @ record.T_pointcloud_camera[:3, :3].T
                                              for record, truth in zip(records, reference)]))
    rotation = relative.mean().as_matrix()
    centres = np.array([record.camera_center for record in records])
    targets = np.array([record.camera_center for record in reference])
    x, y = centres - centres.mean(axis=0), targets - targets.mean(axis=0)
    scale = float(np.sum(y * (x @ rotation.T)) / np.sum(x * x))
    shift = targets.mean(axis=0) - scale * rotation @ centres.mean(axis=0)
    return scale, rotation, shift


def apply_similarity(records: Sequence[CameraRecord], scale: float, rotation: np.ndarray,
                     shift: np.ndarray) -> list[CameraRecord]:
    """`records` moved by x -> scale rotation x + shift: each camera-to-world pose T becomes
    [[R R_T, s R c_T + t], [0, 1]] (the scale moves the centre only); other fields unchanged."""
    moved = []
    for record in records:
        pose = np.eye(4)
        pose[:3, :3] = rotation @ record.T_pointcloud_camera[:3, :3]
        pose[:3, 3] = scale * rotation @ record.camera_center + shift
        moved.append(dataclasses.replace(record, T_pointcloud_camera=pose))
    return moved


def align_to_reference(records: Sequence[CameraRecord], reference: Sequence[CameraRecord]) -> list[CameraRecord]:
    """`records` moved into the reference's frame by `fit_similarity` (same arguments)."""
    return apply_similarity(records, *fit_similarity(records, reference))


def agreeing_similarity(records: Sequence[CameraRecord], reference: Sequence[CameraRecord], max_degrees: float,
                        max_distance: float) -> tuple[tuple[float, np.ndarray, np.ndarray], list[int]]:
    """`fit_similarity` on the cameras that agree with the reference, so that a few cameras placed
    wrongly (e.g. on the wrong side of a symmetric object) do not drag the others.

    Seed: the cameras whose relative rotation R_ref R^T is within `max_degrees` of that of the most
    others. Then: fit on the kept cameras, keep those within `max_degrees` and `max_distance` of
    the reference after the alignment, repeat until none is dropped (or fewer than 3 would remain).

    Args:
        records, reference: poses of the same images in the same order, at least 2.
        max_degrees: largest rotation error of an agreeing camera, degrees.
        max_distance: largest centre error of an agreeing camera, world units of the reference.

    Returns:
        The similarity (s, R, t) fitted to the agreeing cameras, and their indices.
    """
    relative = Rotation.from_matrix(np.array([t.T_pointcloud_camera[:3, :3] @ r.T_pointcloud_camera[:3, :3].T
                                              for r, t in zip(records, reference)]))
    agreement = np.array([np.degrees((relative[i].inv() * relative).magnitude()) <= max_degrees
                          for i in range(len(records))])
    inliers = [int(i) for i in np.flatnonzero(agreement[np.argmax(agreement.sum(axis=1))])]
    while True:
        similarity = fit_similarity([records[i] for i in inliers], [reference[i] for i in inliers])
        rotation, centre = pose_errors(apply_similarity(records, *similarity), reference)
        agree = [i for i in inliers if rotation[i] <= max_degrees and centre[i] <= max_distance]
        if len(agree) == len(inliers) or len(agree) < 3:
            return similarity, inliers
        inliers = agree
