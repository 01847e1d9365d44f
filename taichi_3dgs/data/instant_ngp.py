"""Instant-NGP `transforms.json` -> prepared dataset (train.json, val.json, point_cloud.parquet, config).

Follows the original project's `tools/prepare_InstantNGP_with_mesh.py` (same arguments), with
frames whose image is missing skipped (as instant-ngp does), distortion undistorted, and the
mesh optional.
"""
from __future__ import annotations

import os
from pathlib import Path

from taichi_3dgs.data.converter_options import (BEYOND_CLOUD_POINTS, DEFAULT_MESH_SAMPLE_POINTS, DEFAULT_RANDOM_POINTS,
                                                DEFAULT_VAL_EVERY, NGP_VIEW_VOLUME_POINTS, split_validation)
from taichi_3dgs.data.initial_points import sample_mesh_surface, sample_view_volume
from taichi_3dgs.data.nerf_transforms import camera_records, read_transforms_json, warn_missing_frames
from taichi_3dgs.data.prepared_dataset import IMAGES_DIR, PreparedDataset, staged_output, write_prepared_dataset
from taichi_3dgs.data.undistortion import is_pinhole


def convert_instant_ngp(transforms_train: str | os.PathLike, output_dir: str | os.PathLike, *,
                        transforms_test: str | os.PathLike | None = None,
                        mesh_path: str | os.PathLike | None = None,
                        mesh_sample_points: int | None = None,
                        val_every: int | None = DEFAULT_VAL_EVERY,
                        image_path_prefix: str | os.PathLike | None = None,
                        image_downscale_factor: int = 1, seed: int = 0) -> PreparedDataset:
    """Convert Instant-NGP transforms into a prepared folder (taichi_3dgs.data.prepared_dataset).

    Validation frames are those of `transforms_test`, else every `val_every`-th frame of
    `transforms_train` in file order (index % val_every == 0 over the frames whose image
    exists; none when val_every is None or 0). Frames whose image is missing are skipped, with one
    warning that counts them. Distorted images are undistorted into `<output_dir>/images`.
    Initial points: `mesh_sample_points` points on the mesh surface when `mesh_path` is given
    (default DEFAULT_MESH_SAMPLE_POINTS), else as many random points in the cameras' common view
    volume (default DEFAULT_RANDOM_POINTS), and then the training config also asks the trainer for
    NGP_VIEW_VOLUME_POINTS view-volume points (`initial-points.random-in-view-volume`); either way
    it adds BEYOND_CLOUD_POINTS points past the cloud (`initial-points.beyond-cloud`).

    Args:
        transforms_train: transforms JSON of the training frames.
        output_dir: folder to write; created if needed.
        transforms_test: optional transforms JSON of the validation frames.
        mesh_path: optional mesh in the transforms' world frame.
        mesh_sample_points: number of initial points; None for the default of the point source.
        val_every: validation stride without transforms_test (ignored with it).
        image_path_prefix: folder `file_path` values are relative to (default: each JSON's folder).
        image_downscale_factor: written to the training config.
        seed: random seed of the point sampling.

    Raises:
        FileNotFoundError, ValueError: bad or missing input, no existing image (nothing is written).
        OSError: the output cannot be written (nothing is left behind).
    """
    frames, missing = read_transforms_json(transforms_train, image_path_prefix)
    if transforms_test is not None:
        val_frames, missing_val = read_transforms_json(transforms_test, image_path_prefix)
        train_frames = frames
        missing += missing_val
    else:
        is_val = split_validation([frame.name for frame in frames], val_every)
        train_frames = [frame for frame, val in zip(frames, is_val) if not val]
        val_frames = [frame for frame, val in zip(frames, is_val) if val]
    if not train_frames:
        raise ValueError(f"{transforms_train}: no training frame has an existing image "
                         f"({len(missing)} missing, e.g. {missing[:3]}); expected images relative to "
                         f"{image_path_prefix if image_path_prefix is not None else Path(transforms_train).parent}")
    warn_missing_frames(missing)
    distorted = sum(not is_pinhole(frame.camera) for frame in train_frames + val_frames)

    with staged_output(output_dir) as stage:
        train = camera_records(train_frames, stage)
        val = camera_records(val_frames, stage)
        if mesh_path is not None:
            count = DEFAULT_MESH_SAMPLE_POINTS if mesh_sample_points is None else mesh_sample_points
            cloud = sample_mesh_surface(mesh_path, count, seed)
            point_source = f"{len(cloud)} points sampled on the surface of mesh {mesh_path}"
        else:
            count = DEFAULT_RANDOM_POINTS if mesh_sample_points is None else mesh_sample_points
            cloud = sample_view_volume(train + val, count, seed)
            point_source = f"{len(cloud)} random points in the common view volume of the cameras (no mesh given)"
        write_prepared_dataset(stage, train, val, cloud, image_downscale_factor=image_downscale_factor,
                               view_volume_points=0 if mesh_path is not None else NGP_VIEW_VOLUME_POINTS,
                               beyond_cloud_points=BEYOND_CLOUD_POINTS)

    output = Path(output_dir)
    messages = [f"{len(train)} training and {len(val)} validation frames", f"initial points: {point_source}"]
    if distorted:
        messages.append(f"undistorted {distorted} images (OpenCV distortion) into {output / IMAGES_DIR}")
    return PreparedDataset(output_dir=output, num_train=len(train), num_val=len(val), num_points=len(cloud),
                           messages=messages)
