"""The checks every camera reader applies, and the camera geometry they share.

`rigid_transform_problem` (poses; its rotation block by `rotation_problem`, which the viewer's pose
checks share), `pinhole_intrinsics_problem` (K), `check_resampled_size` (an image against its
camera's size), `requested_size` (the renderers' one size rule) and `project_points` (world points
into a pinhole camera). Frames: camera-to-world poses with OpenCV camera axes (x right, y down,
z forward), K in pixels.
"""
from __future__ import annotations

import numpy as np

# Largest |R^T R - I| entry accepted in a pose's rotation block. Poses stored in float32 are about
# 1e-7 off (the real NeRF and Instant-NGP files of the test data are within 3e-6); a scaled or
# sheared pose is off by about twice its scale error, so 1e-3 still refuses a 0.1 % scale.
ROTATION_TOLERANCE = 1e-3
ROTATION_EXPECTED = f"a proper rotation (R^T R = I within {ROTATION_TOLERANCE:g}, det R = +1)"
RIGID_TRANSFORM_EXPECTED = f"a finite rigid transform [[R, t], [0, 0, 0, 1]] with R {ROTATION_EXPECTED}"
PINHOLE_EXPECTED = "finite [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] with fx, fy > 0 (pixels)"
# An image resampled to another size has each side rounded to whole pixels (0.5 px each); the
# short side predicted from the long side's scale is then off by at most 0.5 + 0.5 * short / long.
ASPECT_TOLERANCE_PX = 1.0


def rotation_problem(rotation: np.ndarray) -> str | None:
    """What keeps `rotation` from being a proper rotation matrix, or None when it is one.

    Args:
        rotation: [3, 3] float array (any float dtype; checked in float64).

    Returns:
        A phrase that completes "<field> ..." (e.g. "is a reflection ..."), or None when the shape
        is [3, 3], the entries are finite, R is orthonormal (max |R^T R - I| <=
        ROTATION_TOLERANCE) and det R > 0 (no reflection).
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    if rotation.shape != (3, 3):
        return f"has shape {list(rotation.shape)}, not [3, 3]"
    if not np.isfinite(rotation).all():
        return "has a non-finite entry"
    error = float(np.abs(rotation.T @ rotation - np.eye(3)).max())
    if error > ROTATION_TOLERANCE:
        return f"is not orthonormal (max |R^T R - I| = {error:.3g})"
    if np.linalg.det(rotation) < 0:
        return "is a reflection (det R = -1), not a rotation"
    return None


def rigid_transform_problem(matrix: np.ndarray) -> str | None:
    """What keeps `matrix` from being a proper rigid transform, or None when it is one.

    Args:
        matrix: [4, 4] float array, a camera-to-world or world-to-camera pose.

    Returns:
        A phrase that completes "<field> ..." (e.g. "has last row [0, 0, 0, 0]"), or None when the
        shape is [4, 4], the entries are finite, the last row is [0, 0, 0, 1] and the rotation
        block R passes `rotation_problem`. The inverse of such a transform is one too, so the check
        serves both directions.
    """
    matrix = np.asarray(matrix, dtype=np.float64)
    if matrix.shape != (4, 4):
        return f"has shape {list(matrix.shape)}, not [4, 4]"
    if not np.isfinite(matrix).all():
        return "has a non-finite entry"
    if not np.allclose(matrix[3], [0.0, 0.0, 0.0, 1.0]):
        return f"has last row {matrix[3].tolist()}"
    problem = rotation_problem(matrix[:3, :3])
    return None if problem is None else f"has a rotation block that {problem}"


def project_points(points: np.ndarray, viewmat: np.ndarray, K: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pinhole projection of world points: (u, v, depth), each [M] float64.

    Args:
        points: [M, 3] world-frame positions.
        viewmat: [4, 4] world-to-camera transform (OpenCV axes). K: [3, 3] zero-skew intrinsics, pixels.

    Returns:
        u, v: pixel coordinates (origin at the top-left image corner, docs/FORMATS.md), inf or nan
        where depth is 0; depth: camera z (world units; <= 0 behind the camera).
    """
    camera = points @ viewmat[:3, :3].T + viewmat[:3, 3]
    depth = camera[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = K[0, 0] * camera[:, 0] / depth + K[0, 2]
        v = K[1, 1] * camera[:, 1] / depth + K[1, 2]
    return u, v, depth


def pinhole_intrinsics_problem(K: np.ndarray) -> str | None:
    """What keeps `K` from being pinhole intrinsics, or None when it is.

    Args:
        K: [3, 3] float array in pixels.

    Returns:
        A phrase that completes "<field> ..." (e.g. "has fx = 0"), or None when the entries are
        finite, fx = K[0, 0] > 0, fy = K[1, 1] > 0, the skew K[0, 1] and K[1, 0] are 0 and the last
        row is [0, 0, 1] (the principal point cx, cy may lie anywhere, as in a cropped image).
    """
    K = np.asarray(K, dtype=np.float64)
    if not np.isfinite(K).all():
        return "has a non-finite entry"
    for name, value in (("fx", K[0, 0]), ("fy", K[1, 1])):
        if not value > 0:
            return f"has {name} = {value:g}"
    if K[0, 1] != 0 or K[1, 0] != 0:
        return f"has skew entries K[0, 1] = {K[0, 1]:g}, K[1, 0] = {K[1, 0]:g}"
    if not np.array_equal(K[2], [0.0, 0.0, 1.0]):
        return f"has last row {K[2].tolist()}"
    return None


def check_resampled_size(image_size: tuple[int, int], camera_size: tuple[int, int], where: str,
                         camera_name: str = "its camera") -> None:
    """Check that an image of `image_size` can be its camera's image resampled (same aspect ratio).

    Resampling scales both sides by one factor and rounds each to whole pixels, so the short side
    predicted from the long side's scale is within ASPECT_TOLERANCE_PX of the image's. Predicting
    the short side from the long one keeps the rounding error below 1 px for any aspect ratio.

    Args:
        image_size: (width, height) of the image file, pixels.
        camera_size: (width, height) the camera's K refers to, pixels.
        where: how the message names the image (file, and record where there is one).
        camera_name: how the message names the camera size (e.g. the fields it was read from).

    Raises:
        ValueError: the aspect ratios differ; the message names `where` and both sizes.
    """
    long_axis = 0 if camera_size[0] >= camera_size[1] else 1
    short_axis = 1 - long_axis
    predicted = image_size[long_axis] * camera_size[short_axis] / camera_size[long_axis]
    if abs(predicted - image_size[short_axis]) > ASPECT_TOLERANCE_PX:
        raise ValueError(f"{where}: image is {image_size[0]}x{image_size[1]} pixels but {camera_name} is "
                         f"{camera_size[0]}x{camera_size[1]}; expected the same aspect ratio (an image "
                         f"resampled from {camera_size[0]}x{camera_size[1]}, within {ASPECT_TOLERANCE_PX:g} px)")


def requested_size(width: int | None, height: int | None, base_width: int, base_height: int) -> tuple[int, int]:
    """The image size a user asked for with `--width` / `--height`: both given -> as given; one
    given -> the other from the aspect ratio `base_width` : `base_height` (rounded, at least 1);
    none -> the base size.

    Raises:
        ValueError: a given size is not a positive integer.
    """
    for name, value in (("width", width), ("height", height)):
        if value is not None and value <= 0:
            raise ValueError(f"--{name}: expected a positive number of pixels, got {value}")
    if width is not None and height is not None:
        return width, height
    if width is not None:
        return width, max(1, round(width * base_height / base_width))
    if height is not None:
        return max(1, round(height * base_width / base_height)), height
    return base_width, base_height
