"""COLMAP sparse model -> prepared dataset (train.json, val.json, point_cloud.parquet, config).

The model (.bin or .txt) is read with pycolmap. COLMAP's camera frame is already OpenCV's (x right,
y down, z forward) and its pixel convention is ours (origin at the image corner, centres at +0.5),
so a pinhole camera maps directly: K = calibration matrix, T_pointcloud_camera =
inverse(cam_from_world). Distorted models are undistorted (taichi_3dgs.data.undistortion).

pycolmap accepts some broken models silently or with messages that name no file, so the files are
checked first (`colmap_files`), naming the file and record of each problem.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pycolmap
from tqdm import tqdm

from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.data.colmap_files import MODEL_FILES, check_binary_model, check_text_model
from taichi_3dgs.data.converter_options import (BEYOND_CLOUD_POINTS, DEFAULT_VAL_EVERY, read_image_list,
                                                split_validation)
from taichi_3dgs.data.point_cloud import PointCloud
from taichi_3dgs.data.prepared_dataset import (IMAGES_DIR, PreparedDataset, staged_output,
                                               write_prepared_dataset)
from taichi_3dgs.data.undistortion import camera_record_for_image, check_undistortable, is_pinhole

@dataclass(frozen=True)
class ColmapLayout:
    """Where a COLMAP dataset's sparse model and images are.

    Attributes:
        model_dir: folder holding cameras/images/points3D (.bin or .txt).
        image_dir: folder the image names of the model are relative to.
    """

    model_dir: Path
    image_dir: Path


def _has_model(folder: Path) -> bool:
    return any((folder / f"cameras{ext}").is_file() for ext in (".bin", ".txt"))


def locate_colmap_dataset(base_path: str | os.PathLike, image_path: str | os.PathLike | None = None) -> ColmapLayout:
    """Find the sparse model and the images from the tool's arguments.

    `base_path` is either the model folder itself (then `image_path` is required, as in the
    original project), a dataset root holding `sparse/0/` (or `sparse/`) and `images/`
    (graphdeco's `convert.py` layout), or that root's `sparse/` folder holding `0/` (the images are
    then `../images`); `image_path` overrides the images folder.

    Raises:
        FileNotFoundError: base_path does not exist, holds no model, or the images folder is missing.
        ValueError: base_path is a model folder and image_path is not given.
    """
    base = Path(base_path)
    if not base.is_dir():
        raise FileNotFoundError(f"{base}: folder does not exist; expected a COLMAP sparse model folder "
                                "or a dataset root holding images/ and sparse/0/")
    # (model folder, the dataset root whose images/ go with it)
    candidates = ((base, None), (base / "sparse" / "0", base), (base / "sparse", base), (base / "0", base.parent))
    for model_dir, root in candidates:
        if _has_model(model_dir):
            break
    else:
        raise FileNotFoundError(f"{base}: no COLMAP model found; expected cameras.bin or cameras.txt in it, "
                                "in sparse/0/, in sparse/ or in 0/")
    if image_path is None:
        if root is None:
            raise ValueError(f"{base} is a sparse model folder: pass --image_path (the images folder), "
                             "or pass the dataset root holding images/ and sparse/0/ as --base_path")
        image_dir = root / "images"
    else:
        image_dir = Path(image_path)
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: images folder does not exist; expected the folder the image "
                                f"names of the COLMAP model {model_dir} are relative to")
    return ColmapLayout(model_dir=model_dir, image_dir=image_dir)


def read_colmap_model(model_dir: str | os.PathLike) -> pycolmap.Reconstruction:
    """Read and check a COLMAP sparse model (all .bin or all .txt) with pycolmap.

    Raises:
        FileNotFoundError: neither all three .bin nor all three .txt files exist.
        ValueError: a truncated or malformed file, an unknown camera model (id or name), a
            non-finite number, an image whose camera id is not in cameras, a 3D point whose track
            names an image or 2D point that does not exist, a repeated id, a camera model that
            cannot be undistorted, or a text file with fewer entries than its header announces;
            the message names the file and, where there is one, the record or line.
    """
    model_dir = Path(model_dir)
    for ext in (".bin", ".txt"):
        if all((model_dir / f"{name}{ext}").is_file() for name in MODEL_FILES):
            break
    else:
        raise FileNotFoundError(f"{model_dir}: expected {', '.join(n + '.bin' for n in MODEL_FILES)} or "
                                f"{', '.join(n + '.txt' for n in MODEL_FILES)}")
    announced = check_binary_model(model_dir) if ext == ".bin" else check_text_model(model_dir)
    reconstruction = pycolmap.Reconstruction()
    try:
        (reconstruction.read_binary if ext == ".bin" else reconstruction.read_text)(str(model_dir))
    except (ValueError, IndexError, RuntimeError, MemoryError) as error:
        raise ValueError(f"{model_dir}: pycolmap cannot read the COLMAP {ext} model "
                         f"({' '.join(str(error).split())}); expected a consistent model") from None
    loaded = {"cameras": reconstruction.num_cameras(), "images": reconstruction.num_images(),
              "points": reconstruction.num_points3D()}
    for kind, count in announced.items():
        if loaded[kind] != count:
            file_name = "points3D" if kind == "points" else kind
            raise ValueError(f"{model_dir / (file_name + ext)}: pycolmap read {loaded[kind]} {kind} but the "
                             f"file announces {count}; the file looks truncated")
    for camera_id, camera in reconstruction.cameras.items():
        check_undistortable(camera, f"{model_dir}: camera {camera_id}")
    return reconstruction


def _point_cloud(reconstruction: pycolmap.Reconstruction) -> PointCloud:
    ids = sorted(reconstruction.points3D)
    xyz = np.array([reconstruction.points3D[i].xyz for i in ids], dtype=np.float64).reshape(-1, 3)
    rgb = np.array([reconstruction.points3D[i].color for i in ids], dtype=np.uint8).reshape(-1, 3)
    return PointCloud(xyz=xyz, rgb=rgb)


def camera_to_world(image: pycolmap.Image) -> np.ndarray:
    """[4, 4] float64 camera-to-world pose (OpenCV axes, COLMAP's world) of a posed pycolmap image."""
    T_pointcloud_camera = np.eye(4)
    T_pointcloud_camera[:3] = image.cam_from_world().inverse().matrix()
    return T_pointcloud_camera


def convert_colmap(base_path: str | os.PathLike, output_dir: str | os.PathLike, *,
                   image_path: str | os.PathLike | None = None,
                   test_image_list_path: str | os.PathLike | None = None,
                   val_every: int | None = DEFAULT_VAL_EVERY,
                   image_downscale_factor: int = 1) -> PreparedDataset:
    """Convert a COLMAP dataset into a prepared folder (see taichi_3dgs.data.prepared_dataset).

    Images are sorted by name; validation images are those named in `test_image_list_path`, else
    every `val_every`-th (index % val_every == 0), none when val_every is None or 0. Pinhole
    images are referenced in place; distorted ones are undistorted into `<output_dir>/images`.
    The point cloud holds every points3D entry (x, y, z, r, g, b), sorted by point id; the training
    config adds BEYOND_CLOUD_POINTS points past it (`initial-points.beyond-cloud`).

    Args:
        base_path: sparse model folder, or dataset root (see `locate_colmap_dataset`).
        output_dir: folder to write; created if needed.
        image_path: images folder (required when base_path is the model folder).
        test_image_list_path: text file of validation image names, one per line.
        val_every: validation stride when no list is given.
        image_downscale_factor: written to the training config.

    Raises:
        FileNotFoundError, ValueError: bad or missing input (nothing is written then).
        OSError: the output cannot be written (nothing is left behind).
    """
    layout = locate_colmap_dataset(base_path, image_path)
    reconstruction = read_colmap_model(layout.model_dir)
    images = sorted((image for image in reconstruction.images.values() if image.has_pose), key=lambda im: im.name)
    if not images:
        raise ValueError(f"{layout.model_dir}: the model has no registered image")
    missing = [image.name for image in images if not (layout.image_dir / image.name).is_file()]
    if missing:
        raise FileNotFoundError(f"{layout.image_dir}: {len(missing)} of the {len(images)} images of the model "
                                f"are missing, e.g. {missing[:3]}; expected every image the model names")
    val_names = read_image_list(test_image_list_path) if test_image_list_path is not None else None
    is_val = split_validation([image.name for image in images], val_every, val_names, str(test_image_list_path))
    if all(is_val):
        raise ValueError(f"{layout.model_dir}: every image went to validation; expected at least one training image")

    distorted = [reconstruction.cameras[image.camera_id].model.name for image in images
                 if not is_pinhole(reconstruction.cameras[image.camera_id])]
    cloud = _point_cloud(reconstruction)
    with staged_output(output_dir) as stage:
        records: list[CameraRecord] = []
        for image in tqdm(images, desc="cameras", unit="image", disable=None):
            camera = reconstruction.cameras[image.camera_id]
            records.append(camera_record_for_image(layout.image_dir / image.name, camera, camera_to_world(image),
                                                   stage / IMAGES_DIR / image.name, camera_id=image.camera_id))
        train = [record for record, val in zip(records, is_val) if not val]
        val = [record for record, val in zip(records, is_val) if val]
        write_prepared_dataset(stage, train, val, cloud, image_downscale_factor=image_downscale_factor,
                               beyond_cloud_points=BEYOND_CLOUD_POINTS)

    output = Path(output_dir)
    messages = [f"COLMAP model {layout.model_dir}: {len(images)} images, {len(cloud)} points"]
    if distorted:
        messages.append(f"undistorted {len(distorted)} images ({', '.join(sorted(set(distorted)))} cameras) into "
                        f"{output / IMAGES_DIR}")
    return PreparedDataset(output_dir=output, num_train=len(train), num_val=len(val), num_points=len(cloud),
                           messages=messages)
