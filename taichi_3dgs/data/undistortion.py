"""From a source camera (pycolmap.Camera, any COLMAP model) to a pinhole `CameraRecord`.

The rasterizer knows only pinhole cameras. Pinhole sources (SIMPLE_PINHOLE, PINHOLE) map directly;
every other perspective model (SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV, OPENCV_FISHEYE, ...) is
undistorted with COLMAP's own undistorter (`pycolmap.undistort_image`, the algorithm of
`colmap image_undistorter`): the image is resampled to a pinhole camera chosen so that the result
has no blank border.
"""
from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pycolmap
from PIL import Image

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.data.camera_checks import check_resampled_size
from taichi_3dgs.data.cameras import CameraRecord

PINHOLE_MODELS = ("SIMPLE_PINHOLE", "PINHOLE")
JPEG_QUALITY = 95


def is_pinhole(camera: pycolmap.Camera) -> bool:
    """True when `camera` has no distortion model (SIMPLE_PINHOLE or PINHOLE)."""
    return camera.model.name in PINHOLE_MODELS


def check_undistortable(camera: pycolmap.Camera, source: str) -> None:
    """Raise ValueError naming `source` when `camera` cannot be turned into a pinhole camera."""
    if not is_pinhole(camera) and not camera.is_perspective():
        raise ValueError(f"{source}: camera model {camera.model.name} is not a perspective model and cannot "
                         f"be undistorted to a pinhole camera; expected one of {', '.join(PINHOLE_MODELS)}, "
                         "SIMPLE_RADIAL, RADIAL, OPENCV, FULL_OPENCV, OPENCV_FISHEYE or another perspective model")


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) in pixels of the image file at `path`, read from its header.

    Raises:
        ValueError: the file is not a readable image.
    """
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"{path}: not a readable image ({error})") from None


def _camera_for_size(camera: pycolmap.Camera, width: int, height: int, path: Path) -> pycolmap.Camera:
    """`camera` rescaled to an image stored at another resolution (e.g. COLMAP's images_4)."""
    if (width, height) == (camera.width, camera.height):
        return camera
    check_resampled_size((width, height), (camera.width, camera.height), str(path))
    rescaled = copy.copy(camera)
    rescaled.rescale(width, height)
    return rescaled


def _undistort_channels(pixels: np.ndarray, camera: pycolmap.Camera) -> tuple[np.ndarray, pycolmap.Camera]:
    options = pycolmap.UndistortCameraOptions()
    bitmap, pinhole = pycolmap.undistort_image(options, pycolmap.Bitmap.from_array(pixels), camera)
    return bitmap.to_array(), pinhole


def undistort_image_file(source: Path, target: Path, camera: pycolmap.Camera) -> tuple[np.ndarray, int, int]:
    """Undistort the image `source`, taken with `camera`, into `target` (atomically).

    `camera` is rescaled first when the image is stored at another resolution. An alpha channel
    is resampled with the same warp as the colours. JPEG targets are written at quality 95 with
    no chroma subsampling.

    Returns:
        (K [3, 3] float64 pixels, width, height) of the pinhole camera of the undistorted image.

    Raises:
        ValueError: `source` is not a readable image, or its aspect ratio differs from the camera's.
    """
    try:
        with Image.open(source) as image:
            image.load()
    except (OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"{source}: not a readable image ({error})") from None
    camera = _camera_for_size(camera, image.width, image.height, source)
    rgb, pinhole = _undistort_channels(np.asarray(image.convert("RGB")), camera)
    result = Image.fromarray(rgb)
    if "A" in image.getbands():
        alpha, _ = _undistort_channels(np.asarray(image.getchannel("A")), camera)
        result.putalpha(Image.fromarray(alpha.reshape(alpha.shape[:2])))
    image_format = Image.registered_extensions().get(target.suffix.lower(), "PNG")
    options = {"quality": JPEG_QUALITY, "subsampling": 0} if image_format == "JPEG" else {}
    with atomic_path(target) as tmp:
        result.save(tmp, format=image_format, **options)
    return pinhole.calibration_matrix(), pinhole.width, pinhole.height


def camera_record_for_image(image_path: Path, camera: pycolmap.Camera, T_pointcloud_camera: np.ndarray,
                            undistorted_path: Path, camera_id: int = 0) -> CameraRecord:
    """The pinhole camera record of one image.

    Pinhole cameras keep the image where it is (K rescaled to the image's stored size when that
    differs from the camera's); other models are undistorted into `undistorted_path`.

    Args:
        image_path: the source image.
        camera: its camera, any perspective COLMAP model, for an image of camera.width x height.
        T_pointcloud_camera: [4, 4] camera-to-world, OpenCV axes.
        undistorted_path: where the undistorted image goes (unused for pinhole cameras).
        camera_id: stored in the record.

    Raises:
        ValueError: unreadable image, mismatching aspect ratio, or a non-perspective camera.
    """
    check_undistortable(camera, str(image_path))
    if is_pinhole(camera):
        width, height = image_size(image_path)
        camera = _camera_for_size(camera, width, height, image_path)
        return CameraRecord(image_path=Path(os.path.abspath(image_path)), K=camera.calibration_matrix(),
                            T_pointcloud_camera=T_pointcloud_camera, width=width, height=height,
                            camera_id=camera_id)
    K, width, height = undistort_image_file(image_path, undistorted_path, camera)
    return CameraRecord(image_path=Path(os.path.abspath(undistorted_path)), K=K,
                        T_pointcloud_camera=T_pointcloud_camera, width=width, height=height,
                        camera_id=camera_id)
