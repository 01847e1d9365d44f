"""Camera poses known only roughly, checked against their photos and replaced where the photos
contradict them (structure from motion with pycolmap).

Poses from a phone's tracking, a robot or a rig are often a degree off, which costs several dB at
any resolution (BENCHMARKS.md "Pose optimisation"). `refine_poses` keeps every pose its photos
agree with, exactly, and replaces the others:

1. SIFT features of every image, each matched with its `neighbours` nearest cameras by the given
   centres (among those facing within 60 degrees of it), verified by two-view geometry.
2. COLMAP's incremental mapping (Schoenberger and Frahm, "Structure-from-Motion Revisited", CVPR
   2016) with the given intrinsics held fixed: poses from the photos alone, in a frame of its own.
3. The test: each keypoint of the model's tracks is compared with its track's point triangulated
   from the *other* given poses (linear DLT, Hartley and Zisserman 2004, section 12.2), trimming
   the poses that fail from the triangulation one by one (`consistency_errors`). A pose whose
   keypoints reproject within `max_error_px` (median; pixels of the image as features are extracted)
   is kept exactly.
4. The model's cameras are moved onto the given frame by the similarity fitted to the kept cameras
   (all registered ones when fewer than 3 were kept; `pose_alignment.agreeing_similarity`, so that
   cameras the mapper placed wrongly do not drag the others), and each contradicted camera takes
   its pose from the moved model, unless the model places it more than MAX_DEGREES or
   MAX_EXTENT_FRACTION x the scene extent away from its given pose (then it is kept and named).

Work files (COLMAP's database and model) go to `work_dir`. Images are read where the records name
them; intrinsics are the records' pinhole K (the images must be undistorted, as the converters
write them).
"""
from __future__ import annotations

import dataclasses
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.data.pose_alignment import agreeing_similarity, apply_similarity, pose_errors

DATABASE = "database.db"
MODEL_DIR = "model"
MAX_DEGREES, MAX_EXTENT_FRACTION = 5.0, 0.1
FACING_COSINE = 0.5
"""Neighbours are cameras whose optical axes are within 60 degrees of each other."""


@dataclass
class RefinedPoses:
    """What `refine_poses` did.

    Attributes:
        records: the records in the given order, each with its given pose or its replaced one.
        errors_px: [N] float64 median reprojection error of each given pose against all the other
            given poses (`consistency_errors`' first pass; pixels of the image as its features were
            extracted; inf where the image was not registered or saw no track of 3 or more images).
        replaced: indices of the records whose pose was replaced.
        unregistered: names of the images the mapper could not place (their poses are kept).
        disagreeing: names of the contradicted images the model places far from the given pose
            (kept as given).
        num_points: 3D points of the model.
    """

    records: list[CameraRecord]
    errors_px: np.ndarray
    replaced: list[int]
    unregistered: list[str]
    disagreeing: list[str]
    num_points: int


def neighbour_pairs(records: Sequence[CameraRecord], neighbours: int) -> list[tuple[int, int]]:
    """Image pairs to match: each camera with its `neighbours` nearest centres among the cameras
    whose optical axis is within 60 degrees of its own; (i, j) with i < j, sorted, no repeats."""
    centres = np.array([record.camera_center for record in records])
    axes = np.array([record.T_pointcloud_camera[:3, 2] for record in records])
    pairs = set()
    for i in range(len(records)):
        distance = np.linalg.norm(centres - centres[i], axis=1)
        distance[axes @ axes[i] < FACING_COSINE] = np.inf
        distance[i] = np.inf
        for j in np.argsort(distance, kind="stable")[:neighbours]:
            if np.isfinite(distance[j]):
                pairs.add((min(i, int(j)), max(i, int(j))))
    return sorted(pairs)


def _image_names(records: Sequence[CameraRecord]) -> tuple[Path, list[str]]:
    """The images' common folder and their paths relative to it (COLMAP's image names)."""
    paths = [os.path.abspath(record.image_path) for record in records]
    root = Path(os.path.commonpath([os.path.dirname(path) for path in paths]))
    names = [Path(path).relative_to(root).as_posix() for path in paths]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"the cameras name the image {duplicates[0]} more than once; expected each image once")
    return root, names


def _features_and_matches(work_dir: Path, root: Path, names: list[str], records: Sequence[CameraRecord],
                          max_image_size: int, neighbours: int) -> None:
    """SIFT features with one PINHOLE camera per image set to the record's K (scaled to the image
    file's size), then matches of `neighbour_pairs`, into work_dir/database.db."""
    import pycolmap

    from taichi_3dgs.data.structure_from_motion import run_cancellable

    database = str(work_dir / DATABASE)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "PINHOLE"
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.max_image_size = max_image_size
    run_cancellable(lambda token: pycolmap.extract_features(
        database, str(root), image_names=names, camera_mode=pycolmap.CameraMode.PER_IMAGE, reader_options=reader,
        extraction_options=extraction, cancellation_token=token))
    by_name = dict(zip(names, records))
    handle = pycolmap.Database.open(database)
    for image in handle.read_all_images():
        record, camera = by_name[image.name], handle.read_camera(image.camera_id)
        sx, sy = camera.width / record.width, camera.height / record.height
        camera.params = [record.K[0, 0] * sx, record.K[1, 1] * sy, record.K[0, 2] * sx, record.K[1, 2] * sy]
        camera.has_prior_focal_length = True
        handle.update_camera(camera)
    handle.close()
    pair_list = work_dir / "pairs.txt"
    pair_list.write_text("".join(f"{names[i]} {names[j]}\n" for i, j in neighbour_pairs(records, neighbours)),
                         encoding="utf-8")
    pairing = pycolmap.ImportedPairingOptions()
    pairing.match_list_path = str(pair_list)
    run_cancellable(lambda token: pycolmap.match_image_pairs(database, pairing_options=pairing,
                                                             cancellation_token=token))


def _map(work_dir: Path, root: Path, num_images: int):
    """Incremental mapping with the intrinsics fixed; the model with the most images, written to
    work_dir/model. Raises ValueError when no model could be made."""
    import pycolmap

    from taichi_3dgs.data.structure_from_motion import map_images

    options = pycolmap.IncrementalPipelineOptions()
    options.ba_refine_focal_length = False
    options.ba_refine_principal_point = False
    options.ba_refine_extra_params = False
    models, scratch = map_images(work_dir, root, num_images, options)
    shutil.rmtree(scratch, ignore_errors=True)
    if not models:
        raise ValueError(f"{root}: structure from motion registered none of the images (too little overlap or "
                         "texture); the poses cannot be checked against the photos")
    target = work_dir / MODEL_DIR
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir()
    models[0].write_binary(str(target))
    return models[0]


def _observations(model, records: Sequence[CameraRecord], names: Sequence[str]):
    """The keypoints of `model`'s tracks of 3 or more images, one per image and track, sorted by
    record: (record index [M] int, pixel in the record's image [M, 2] float64, track index [M] int)."""
    index = {name: i for i, name in enumerate(names)}
    cameras, pixels, tracks = [], [], []
    number = 0
    for point in model.points3D.values():
        # A track may hold two keypoints of one image: keep the first.
        first_per_image = {}
        for element in point.track.elements:
            first_per_image.setdefault(element.image_id, element)
        if len(first_per_image) < 3:
            continue
        for element in first_per_image.values():
            image = model.images[element.image_id]
            camera, record = model.cameras[image.camera_id], records[index[image.name]]
            cameras.append(index[image.name])
            pixels.append(image.points2D[element.point2D_idx].xy
                          * [record.width / camera.width, record.height / camera.height])
            tracks.append(number)
        number += 1
    order = np.argsort(cameras, kind="stable")
    return (np.array(cameras, dtype=np.int64)[order], np.array(pixels).reshape(-1, 2)[order],
            np.array(tracks, dtype=np.int64)[order])


def consistency_errors(model, records: Sequence[CameraRecord], names: Sequence[str],
                       max_error_px: float | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How well each record's pose explains its keypoints, judged by the other poses.

    Each keypoint of a track of `model` (a pycolmap.Reconstruction of the images `names`) is
    compared with the track's point triangulated from the *other* trusted records that see it
    (linear DLT, at least 2 of them) and projected with its own record. A record's error is the
    median over its keypoints. Every record starts trusted; while a trusted record's error exceeds
    `max_error_px` (one number, or [N] one per record), the one that exceeds it most stops being
    trusted (a trimmed fit: a few wrong poses do not make the good ones look wrong), and the errors
    are measured again.

    Returns:
        [N] float64 errors in pixels of each record's image at the end (inf where no track point
        could be triangulated from 2 other trusted records), [N] bool: trusted at the end, and [N]
        float64 errors of the first pass (every record trusted).
    """
    camera, pixel, track = _observations(model, records, names)
    projection = np.array([record.K @ record.viewmat[:3] for record in records])  # [N, 3, 4]
    P = projection[camera]
    rows = np.stack([pixel[:, :1] * P[:, 2] - P[:, 0], pixel[:, 1:] * P[:, 2] - P[:, 1]], axis=1)  # [M, 2, 4]
    terms = np.einsum("mri,mrj->mij", rows, rows)  # each keypoint's part of the track's A^T A
    bounds = np.searchsorted(camera, np.arange(len(records) + 1))  # record i's keypoints: bounds[i]:bounds[i+1]
    trusted = np.ones(len(records), dtype=bool)
    first = None
    num_tracks = int(track.max()) + 1 if len(track) else 0
    while True:
        weight = trusted[camera].astype(np.float64)
        normal = np.zeros((num_tracks, 4, 4))
        np.add.at(normal, track, terms * weight[:, None, None])
        count = np.bincount(track, weights=weight, minlength=num_tracks)
        others = normal[track] - terms * weight[:, None, None]
        usable = count[track] - weight >= 2
        points = np.linalg.eigh(others)[1][:, :, 0]  # the smallest eigenvector: homogeneous point
        image = np.einsum("mij,mj->mi", P, points)
        error = np.linalg.norm(image[:, :2] / image[:, 2:] - pixel, axis=1)
        error[image[:, 2] * points[:, 3] <= 0] = 1e6  # behind the camera
        errors = np.full(len(records), np.inf)
        for i, (start, stop) in enumerate(zip(bounds[:-1], bounds[1:])):
            if np.any(usable[start:stop]):
                errors[i] = np.median(error[start:stop][usable[start:stop]])
        first = errors if first is None else first
        excess = errors / max_error_px
        failing = np.flatnonzero(trusted & (excess > 1))
        if len(failing) == 0:
            return errors, trusted, first
        trusted[failing[np.argmax(excess[failing])]] = False


def refine_poses(records: Sequence[CameraRecord], work_dir: str | os.PathLike, *, max_error_px: float = 3.0,
                 max_image_size: int = 1600, neighbours: int = 15) -> RefinedPoses:
    """Keep the poses the photos agree with and replace the others (module docstring).

    Args:
        records: the cameras (at least 3), undistorted pinhole images; poses camera-to-world in
            the frame to keep.
        work_dir: folder for COLMAP's database and model (created; must not hold a database yet).
        max_error_px: a given pose whose keypoints reproject with a median error up to this many
            pixels is kept; pixels of the image as its features are extracted (longest side at most
            max_image_size), where keypoints are about equally precise whatever the photo's size.
        max_image_size: longest image side in pixels for feature extraction.
        neighbours: cameras each image is matched with.

    Returns:
        A `RefinedPoses`.

    Raises:
        ValueError: fewer than 3 cameras, an image named twice, work_dir holds a database already,
            or no model could be made.
        KeyboardInterrupt: Ctrl-C (pycolmap stopped).
    """
    from taichi_3dgs.data.colmap import camera_to_world
    from taichi_3dgs.training.dataset import scene_extent

    if len(records) < 3:
        raise ValueError(f"{len(records)} cameras; expected 3 or more to check poses against each other")
    work_dir = Path(work_dir)
    if (work_dir / DATABASE).exists():
        raise ValueError(f"{work_dir / DATABASE} exists; expected a new work folder (nothing is written over)")
    work_dir.mkdir(parents=True, exist_ok=True)
    root, names = _image_names(records)
    _features_and_matches(work_dir, root, names, records, max_image_size, neighbours)
    model = _map(work_dir, root, len(names))
    # COLMAP extracts features with the longest side scaled down to max_image_size.
    extraction_scale = np.array([min(1.0, max_image_size / max(r.width, r.height)) for r in records])
    errors, _, first_errors = consistency_errors(model, records, names, max_error_px / extraction_scale)
    index = {name: i for i, name in enumerate(names)}
    modelled = {index[image.name]: dataclasses.replace(records[index[image.name]],
                                                       T_pointcloud_camera=camera_to_world(image))
                for image in model.images.values() if image.has_pose}
    registered = sorted(modelled)
    within = errors * extraction_scale <= max_error_px
    kept = [i for i in registered if within[i]]
    anchors = kept if len(kept) >= 3 else registered
    extent = scene_extent(records)
    refined, replaced, disagreeing = list(records), [], []
    if len(anchors) >= 3:
        similarity, _ = agreeing_similarity([modelled[i] for i in anchors], [records[i] for i in anchors],
                                            MAX_DEGREES, MAX_EXTENT_FRACTION * extent)
        for i in registered:
            if within[i]:
                continue
            candidate = apply_similarity([modelled[i]], *similarity)[0]
            turn, shift = pose_errors([candidate], [records[i]])
            if turn[0] > MAX_DEGREES or shift[0] > MAX_EXTENT_FRACTION * extent:
                disagreeing.append(names[i])
            else:
                refined[i] = candidate
                replaced.append(i)
    unregistered = [name for i, name in enumerate(names) if i not in modelled]
    return RefinedPoses(records=refined, errors_px=first_errors * extraction_scale, replaced=replaced,
                        unregistered=unregistered, disagreeing=disagreeing, num_points=model.num_points3D())
