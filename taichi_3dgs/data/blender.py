"""BlenderNeRF output / NeRF-synthetic scene folder -> prepared dataset.

The folder holds `transforms_train.json` and optionally `transforms_test.json` /
`transforms_val.json` (NeRF-synthetic: `file_path` without extension, intrinsics from
`camera_angle_x` only; BlenderNeRF: `fl_x`, `cx`, `w`, ... as Instant-NGP). The test split is the
one 3DGS papers report, so it becomes val.json (the val split is used only when there is no test
split); `val_every` instead holds out every N-th training frame, `no_val` none. Images are RGBA over a transparent background: the training config sets a white
background, over which the trainer composites them (as NeRF and graphdeco 3DGS do).
"""
from __future__ import annotations

import os
from pathlib import Path

from taichi_3dgs.data.converter_options import DEFAULT_BLENDER_POINTS, split_validation
from taichi_3dgs.data.initial_points import sample_view_volume
from taichi_3dgs.data.nerf_transforms import camera_records, read_transforms_json, warn_missing_frames
from taichi_3dgs.data.prepared_dataset import (WHITE_BACKGROUND, PreparedDataset, staged_output,
                                               write_prepared_dataset)

VAL_SPLITS = ("test", "val")


def convert_blender_nerf(scene_dir: str | os.PathLike, output_dir: str | os.PathLike, *,
                         num_points: int = DEFAULT_BLENDER_POINTS, val_every: int | None = None,
                         no_val: bool = False, image_downscale_factor: int = 1,
                         seed: int = 0) -> PreparedDataset:
    """Convert a BlenderNeRF / NeRF-synthetic folder into a prepared folder.

    train.json <- transforms_train.json; val.json <- transforms_test.json, else
    transforms_val.json, else empty; with `val_every`, every `val_every`-th training frame
    (index % val_every == 0, file order) instead of a split file; with `no_val`, none.
    Initial points: `num_points` random points in the cameras' common view volume (no colour). The config sets `background-color: [1.0, 1.0, 1.0]`.

    Raises:
        FileNotFoundError: no transforms_train.json in scene_dir.
        ValueError: malformed transforms, no existing training image (nothing is written).
        OSError: the output cannot be written (nothing is left behind).
    """
    scene_dir = Path(scene_dir)
    train_json = scene_dir / "transforms_train.json"
    if not train_json.is_file():
        raise FileNotFoundError(f"{scene_dir}: no transforms_train.json; expected a BlenderNeRF or NeRF-synthetic "
                                "folder with transforms_train.json (and transforms_test.json / transforms_val.json)")
    train_frames, missing = read_transforms_json(train_json)
    if not train_frames:
        raise ValueError(f"{train_json}: none of its {len(missing)} frames has an existing image "
                         f"(e.g. {missing[:3]}); expected images relative to {scene_dir}")
    val_json = None
    val_frames = []
    if val_every:
        is_val = split_validation([frame.name for frame in train_frames], val_every)
        val_frames = [frame for frame, val in zip(train_frames, is_val) if val]
        train_frames = [frame for frame, val in zip(train_frames, is_val) if not val]
    elif not no_val:
        val_json = next((scene_dir / f"transforms_{split}.json" for split in VAL_SPLITS
                         if (scene_dir / f"transforms_{split}.json").is_file()), None)
    if val_json is not None:
        val_frames, missing_val = read_transforms_json(val_json)
        missing += missing_val
    warn_missing_frames(missing)

    with staged_output(output_dir) as stage:
        train = camera_records(train_frames, stage)
        val = camera_records(val_frames, stage)
        cloud = sample_view_volume(train + val, num_points, seed)
        write_prepared_dataset(stage, train, val, cloud, image_downscale_factor=image_downscale_factor,
                               background_color=WHITE_BACKGROUND)

    messages = [f"{len(train)} training frames from {train_json.name}, {len(val)} validation frames from "
                f"{_val_source(val_json, val_every, no_val)}",
                f"initial points: {len(cloud)} random points in the common view volume of the cameras",
                "images carry alpha: the config composites them over a white background"]
    return PreparedDataset(output_dir=Path(output_dir), num_train=len(train), num_val=len(val),
                           num_points=len(cloud), messages=messages)


def _val_source(val_json: Path | None, val_every: int | None, no_val: bool) -> str:
    if val_every:
        return f"every {val_every}-th training frame"
    if no_val:
        return "(none: no_val)"
    return val_json.name if val_json is not None else "(no test or val split)"
