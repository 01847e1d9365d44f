"""What `visualizer.py` runs: load the scenes, set up the first view, then open the window or
render an orbit to PNG files (headless)."""
from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import numpy as np
import torch

from taichi_3dgs.backend import torch_device
from taichi_3dgs.data.camera_checks import requested_size
from taichi_3dgs.data.cameras import CameraRecord, read_cameras_json
from taichi_3dgs.viewer.camera_paths import ellipse_path, orbit_path, overview_camera, scene_bounds
from taichi_3dgs.viewer.controller import Controller
from taichi_3dgs.viewer.geometry import invert_rigid
from taichi_3dgs.viewer.render_warnings import is_blind, warn_blind_views, warn_degenerate_scene
from taichi_3dgs.viewer.rendering import render_scene_view, save_png, to_uint8
from taichi_3dgs.viewer.scene_objects import SceneObject, compose_objects, load_scene_objects

DEFAULT_SIZE = (960, 540)
"""Window size (width, height) without `--width/--height` and without dataset cameras."""

MAX_DATASET_SIZE = 1280
"""Without `--width/--height`, a dataset camera's image is shown downscaled to this longer side."""

TRANSLATION_STEP_FRACTION = 0.02
"""A movement key moves by this fraction of the scene radius (`scene_bounds`)."""


def window_size(width: int | None, height: int | None, cameras: list[CameraRecord]) -> tuple[int, int]:
    """The image size: both given -> as given; one given -> the other from the aspect ratio of
    the first dataset camera (16:9 without cameras); none -> the first camera's size (longer side
    at most `MAX_DATASET_SIZE`) or `DEFAULT_SIZE`.

    Raises:
        ValueError: a given size is not positive.
    """
    if cameras:
        base_width, base_height = cameras[0].width, cameras[0].height
        shrink = min(1.0, MAX_DATASET_SIZE / max(base_width, base_height))
        base_width, base_height = round(base_width * shrink), round(base_height * shrink)
    else:
        base_width, base_height = DEFAULT_SIZE
    return requested_size(width, height, base_width, base_height)


def create_controller(objects: list[SceneObject], width: int, height: int,
                      cameras: list[CameraRecord]) -> Controller:
    """The controller of a new viewer session.

    The view starts at the first dataset camera (its K rescaled to `width` x `height`), or,
    without cameras, at the `overview_camera` of all objects' Gaussians (the first frame of the
    headless orbit). Movement keys move by `TRANSLATION_STEP_FRACTION` of the scene radius.
    """
    means = torch.cat([obj.world_scene().means for obj in objects])
    _, radius = scene_bounds(means)
    dataset_cameras = [(camera.T_pointcloud_camera, camera.scaled(width, height).K) for camera in cameras]
    if dataset_cameras:
        T_world_camera, K = dataset_cameras[0]
    else:
        T_world_camera, K, _, _ = overview_camera(means, width, height)
    return Controller(objects=objects, T_world_camera=T_world_camera, K=K, width=width,
                      height=height, translation_step=TRANSLATION_STEP_FRACTION * radius,
                      dataset_cameras=dataset_cameras, dataset_index=0 if cameras else None)


def run_viewer(scene_paths: list[str | os.PathLike], width: int | None = None,
               height: int | None = None, cameras_path: str | os.PathLike | None = None,
               screenshot_dir: str | os.PathLike = "screenshots") -> None:
    """Open the interactive viewer on one or more scenes (keys: `controller` module docstring).

    Raises:
        FileNotFoundError, ValueError: unreadable scene or camera files (naming the file).
        RuntimeError: no display (DISPLAY unset on Linux, or Taichi cannot open a window).
    """
    from taichi_3dgs.viewer.window import run_window

    if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise RuntimeError("no X display (DISPLAY is not set); use --headless --output_dir DIR to "
                           "render to files instead")
    cameras = read_cameras_json(cameras_path) if cameras_path is not None else []
    width, height = window_size(width, height, cameras)
    objects = load_scene_objects(scene_paths, torch_device())
    run_window(create_controller(objects, width, height, cameras), Path(screenshot_dir))


def orbit_poses(objects: list[SceneObject], n_frames: int, width: int, height: int,
                cameras: list[CameraRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Camera-to-world poses [n_frames, 4, 4] and the shared K [3, 3] of the headless orbit:
    the `ellipse_path` of the dataset cameras (at their height, about their mean up; K of the
    first one, rescaled), or without cameras one turn of the `overview_camera` (looking down
    from `ORBIT_ELEVATION_DEGREES`) about the scene's up axis (`scene_up` of the means) through
    the scene centre."""
    if cameras:
        poses = ellipse_path(np.stack([camera.T_pointcloud_camera for camera in cameras]), n_frames)
        return poses, cameras[0].scaled(width, height).K
    T_world_camera, K, center, up = overview_camera(
        torch.cat([obj.world_scene().means for obj in objects]), width, height)
    return orbit_path(T_world_camera, center, up, n_frames), K


def render_orbit(scene_paths: list[str | os.PathLike], output_dir: str | os.PathLike,
                 n_frames: int, width: int | None = None, height: int | None = None,
                 cameras_path: str | os.PathLike | None = None) -> list[Path]:
    """Render `n_frames` of an orbit (`orbit_poses`) around the merged scenes to
    `output_dir/frame_NNNN.png`, without a window.

    Every input (frame count, cameras, image size, scenes, the orbit itself) is read and checked
    before anything is written; should a frame still fail to render or write, the frames written
    so far and the folders this call created are removed again. An empty scene renders the
    background: the warnings of `render_warnings` name empty or degenerate scenes and the frames
    that show only the background.

    Returns:
        The written PNG paths, in frame order.

    Raises:
        FileNotFoundError, ValueError: unreadable inputs, n_frames < 1, a non-positive size.
        OSError: a frame cannot be written (nothing of this call is left behind).
    """
    if n_frames < 1:
        raise ValueError(f"--n_frames: expected >= 1, got {n_frames}")
    cameras = read_cameras_json(cameras_path) if cameras_path is not None else []
    width, height = window_size(width, height, cameras)
    objects = load_scene_objects(scene_paths, torch_device())
    poses, K = orbit_poses(objects, n_frames, width, height, cameras)
    viewmats = [invert_rigid(pose) for pose in poses]
    for path, obj in zip(scene_paths, objects):
        warn_degenerate_scene(obj.scene, str(path), viewmats)
    scene = compose_objects(objects)
    output_dir = Path(output_dir)
    created = _missing_folders(output_dir)
    written, blind = [], []
    try:
        for index, viewmat in enumerate(viewmats):
            view = render_scene_view(scene, viewmat, K, width, height)
            if scene is not None and scene.num_gaussians and is_blind(view.alpha):
                blind.append(index)
            path = output_dir / f"frame_{index:04d}.png"
            save_png(path, to_uint8(view.image))
            written.append(path)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        for folder in created:
            with contextlib.suppress(OSError):  # not empty: someone else writes there too
                folder.rmdir()
        raise
    warn_blind_views(blind, "frame", "the orbit")
    return written


def _missing_folders(folder: Path) -> list[Path]:
    """`folder` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing
