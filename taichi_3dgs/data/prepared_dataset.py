"""The folder every converter writes: cameras, point cloud and a ready-to-run training config.

    <output_dir>/train.json           camera records for training (docs/FORMATS.md "Camera JSON")
    <output_dir>/val.json             camera records for validation (possibly an empty array)
    <output_dir>/point_cloud.parquet  initial points x, y, z[, r, g, b]
    <output_dir>/train_config.yaml    training config pointing at the three files above
    <output_dir>/images/              only when images had to be undistorted

Everything is first written into a staging folder and moved into place only once complete, so a
failing conversion leaves nothing behind (`staged_output`).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence

import yaml

from taichi_3dgs.atomic_io import write_text_atomic
from taichi_3dgs.data.cameras import CameraRecord, write_cameras_json
from taichi_3dgs.data.point_cloud import PointCloud, write_point_cloud

TRAIN_JSON = "train.json"
VAL_JSON = "val.json"
POINT_CLOUD_PARQUET = "point_cloud.parquet"
TRAIN_CONFIG_YAML = "train_config.yaml"
IMAGES_DIR = "images"
SUMMARY_DIR = "logs"
MODEL_DIR = "output"
# NeRF-synthetic / BlenderNeRF images are RGBA over a transparent background, composited on white
# as in NeRF and graphdeco 3DGS (`--white_background`).
WHITE_BACKGROUND = (1.0, 1.0, 1.0)


class _ConfigDumper(yaml.SafeDumper):
    """Block-style mapping with flow-style lists (`background-color: [1.0, 1.0, 1.0]`)."""


_ConfigDumper.add_representer(
    list, lambda dumper, value: dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True))


@dataclass
class PreparedDataset:
    """What a converter wrote.

    Attributes:
        output_dir: the folder holding the files listed in the module docstring.
        num_train, num_val: number of training / validation camera records.
        num_points: number of points in point_cloud.parquet.
        messages: human-readable lines about what was done (undistortion, point source, ...).
    """

    output_dir: Path
    num_train: int
    num_val: int
    num_points: int
    messages: list[str] = field(default_factory=list)

    @property
    def config_path(self) -> Path:
        """The training config to pass to the trainer (`--train_config`)."""
        return self.output_dir / TRAIN_CONFIG_YAML


@contextlib.contextmanager
def staged_output(output_dir: str | os.PathLike) -> Iterator[Path]:
    """Yield an empty staging folder whose files are moved into `output_dir` on success.

    The staging folder lies in `output_dir` when it exists, else in its nearest existing
    ancestor (same file system, so each move is an atomic rename). Files are moved one by one,
    `train_config.yaml` last, replacing files of the same name; other files in `output_dir` are
    kept. On an exception the staging folder is deleted and `output_dir` is not created.

    Raises:
        ValueError: `output_dir` exists and is not a folder.
        OSError: the staging folder cannot be created (e.g. a read-only location).
    """
    output_dir = Path(os.path.abspath(output_dir))
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"output folder {output_dir} exists and is not a folder")
    anchor = output_dir
    while not anchor.exists():
        anchor = anchor.parent
    stage = Path(tempfile.mkdtemp(prefix=f".{output_dir.name}.staging-", dir=anchor))
    try:
        yield stage
        files = sorted(p for p in stage.rglob("*") if p.is_file())
        files.sort(key=lambda p: p.name == TRAIN_CONFIG_YAML)
        for source in files:
            target = output_dir / source.relative_to(stage)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_training_config(path: str | os.PathLike, *, image_downscale_factor: int = 1,
                          background_color: Sequence[float] | None = None, view_volume_points: int = 0,
                          beyond_cloud_points: int = 0) -> None:
    """Write the training YAML for a prepared folder, atomically.

    Keys (kebab-case; relative paths are resolved by the trainer against the YAML's folder):
    `train-dataset-json-path`, `val-dataset-json-path`, `pointcloud-parquet-path`,
    `summary-writer-log-dir`, `output-model-dir`, `image-downscale-factor`, `scale-schedule: true`
    (a run shortened with --num-iterations keeps the official schedule's phases in proportion;
    training/run_length.py), when given `background-color` ([3] floats in 0..1, for images with
    alpha), and the initial points beyond the official recipe that each converter passes, chosen
    by measurement over the shared captures (BENCHMARKS.md "Quality over every shared capture"):
    `initial-points.random-in-view-volume` when view_volume_points > 0 and
    `initial-points.beyond-cloud` when beyond_cloud_points > 0.

    Raises:
        ValueError: image_downscale_factor < 1, a background colour that is not 3 numbers in 0..1,
            or a point count that is not an integer >= 0.
    """
    if isinstance(image_downscale_factor, bool) or not isinstance(image_downscale_factor, int) \
            or image_downscale_factor < 1:
        raise ValueError(f"image downscale factor is {image_downscale_factor!r}; expected an integer >= 1")
    config: dict[str, object] = {
        "train-dataset-json-path": TRAIN_JSON,
        "val-dataset-json-path": VAL_JSON,
        "pointcloud-parquet-path": POINT_CLOUD_PARQUET,
        "summary-writer-log-dir": SUMMARY_DIR,
        "output-model-dir": MODEL_DIR,
        "image-downscale-factor": image_downscale_factor,
        "scale-schedule": True,
    }
    if background_color is not None:
        color = [float(c) for c in background_color]
        if len(color) != 3 or not all(0.0 <= c <= 1.0 for c in color):
            raise ValueError(f"background colour is {background_color!r}; expected 3 numbers in 0..1")
        config["background-color"] = color
    points = {"random-in-view-volume": view_volume_points, "beyond-cloud": beyond_cloud_points}
    for key, count in points.items():
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"number of {key} points is {count!r}; expected an integer >= 0")
    if any(points.values()):
        config["initial-points"] = {key: count for key, count in points.items() if count}
    write_text_atomic(path, yaml.dump(config, Dumper=_ConfigDumper, sort_keys=False, default_flow_style=False))


def write_prepared_dataset(folder: Path, train: Sequence[CameraRecord], val: Sequence[CameraRecord],
                           cloud: PointCloud, *, image_downscale_factor: int = 1,
                           background_color: Sequence[float] | None = None, view_volume_points: int = 0,
                           beyond_cloud_points: int = 0) -> None:
    """Write train.json, val.json, point_cloud.parquet and train_config.yaml into `folder`.

    Raises:
        ValueError: see `write_training_config`.
        OSError: a file cannot be written.
    """
    write_training_config(folder / TRAIN_CONFIG_YAML, image_downscale_factor=image_downscale_factor,
                          background_color=background_color, view_volume_points=view_volume_points,
                          beyond_cloud_points=beyond_cloud_points)
    write_cameras_json(folder / TRAIN_JSON, train)
    write_cameras_json(folder / VAL_JSON, val)
    write_point_cloud(folder / POINT_CLOUD_PARQUET, cloud)
