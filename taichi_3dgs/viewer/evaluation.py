"""What `gaussian_point_render.py` runs: render a trained scene at given poses, write the renders
(and ground-truth images) as PNG like the official 3DGS `render.py`, per-view PSNR / SSIM (and
LPIPS, given its weights file) like its `metrics.py`, and optionally an MP4.

Output layout under `output_prefix`:

    renders/00000.png ...   the renders, one per pose, in pose order
    gt/00000.png ...        the ground-truth images at render size (or under `gt_prefix`)
    metrics.json            the trainer's layout (`training.evaluation.write_metrics`):
                            {"step": null, "val": {"psnr", "ssim"[, "lpips"], "per_view": [{"image",
                             "image_path", "psnr", "ssim"[, "lpips"]}, ...]}, "num_gaussians",
                             "train_minutes": null, "scene", "poses"}
    metrics.csv             name,image_path,psnr,ssim[,lpips] per view, then a row named "mean"

Metrics are computed, as the official `metrics.py` does, on the 8-bit images that are written
(both divided by 255), with `taichi_3dgs.metrics.psnr` / `ssim` and `taichi_3dgs.lpips`. Ground
truth with an alpha channel is composited over the background colour, which is also the render's
background.
"""
from __future__ import annotations

import csv
import io
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch

from taichi_3dgs.atomic_io import atomic_path, removed_on_error, write_text_atomic
from taichi_3dgs.backend import torch_device
from taichi_3dgs.data.camera_checks import requested_size
from taichi_3dgs.data.cameras import read_cameras_json
from taichi_3dgs.data.views import View, load_view
from taichi_3dgs.lpips import LPIPS, check_image_size, load_lpips
from taichi_3dgs.metrics import psnr, ssim
from taichi_3dgs.scene.io import read_scene
from taichi_3dgs.scene.parquet import TrainingResolution, read_training_resolution
from taichi_3dgs.training.evaluation import EvaluationResult, ViewScore, write_metrics
from taichi_3dgs.viewer.poses import load_camera_path
from taichi_3dgs.viewer.render_warnings import is_blind, warn_blind_views, warn_degenerate_scene
from taichi_3dgs.viewer.rendering import render_scene_view, save_png, to_uint8

POSES_SUFFIXES = (".json", ".pt")


@dataclass(frozen=True)
class RenderView:
    """One pose to render.

    Attributes:
        name: output file stem ("00000", ...).
        viewmat: [4, 4] float64 world-to-camera.
        K: [3, 3] float64 intrinsics for `width` x `height`.
        width, height: render size in pixels.
        image_path: the ground-truth image, or None (camera paths from poses.pt).
        target: the ground truth decoded and resized to width x height (the trainer's loader),
            or None.
    """

    name: str
    viewmat: np.ndarray
    K: np.ndarray
    width: int
    height: int
    image_path: Path | None = None
    target: View | None = None


def load_render_views(poses_path: str | os.PathLike, image_downscale_factor: int = 1,
                      max_image_long_side: int = sys.maxsize, width: int | None = None,
                      height: int | None = None) -> list[RenderView]:
    """Poses from a camera JSON (`train.json` / `val.json`, with ground-truth images) or a
    poses.pt camera path (`taichi_3dgs.viewer.poses`, no images).

    JSON records are loaded as the trainer loads them (`taichi_3dgs.data.views.load_view`):
    the image on disk divided by `image_downscale_factor` and capped at `max_image_long_side`
    (so a scene is evaluated at the size it was trained at) and K rescaled to it. With `width`
    and/or `height` (`camera_checks.requested_size`, from each pose's own size and aspect) every pose is
    rendered at that size instead, K rescaled, and JSON records carry no ground truth.

    Raises:
        FileNotFoundError: the poses file, or an image a JSON record names, does not exist.
        ValueError: another suffix, a factor < 1, a size < 1, a camera JSON without records, or
            what the readers raise (naming file and record).
    """
    path = Path(poses_path)
    suffix = path.suffix.lower()
    if suffix not in POSES_SUFFIXES:
        raise ValueError(f"{path}: unknown poses file suffix {path.suffix!r}; expected a camera "
                         f"JSON (.json) or a camera path (.pt)")
    if image_downscale_factor < 1:
        raise ValueError(f"image downscale factor: expected an integer >= 1, got {image_downscale_factor}")
    resize = width is not None or height is not None
    if suffix == ".pt":
        camera_path = load_camera_path(path)
        size = requested_size(width, height, camera_path.width, camera_path.height)
        scale = np.diag([size[0] / camera_path.width, size[1] / camera_path.height, 1.0])
        return [RenderView(f"{index:05d}", viewmat, scale @ K, *size)
                for index, (viewmat, K) in enumerate(zip(camera_path.viewmats, camera_path.Ks))]
    views = []
    for index, record in enumerate(read_cameras_json(path)):
        if resize:
            camera = record.scaled(*requested_size(width, height, record.width, record.height))
            views.append(RenderView(f"{index:05d}", camera.viewmat, camera.K, camera.width, camera.height))
            continue
        view = load_view(record, image_downscale_factor, max_image_long_side, "cpu", f"{path}: record {index}")
        views.append(RenderView(f"{index:05d}", view.camera.viewmat, view.camera.K, view.width,
                                view.height, record.image_path, view))
    if not views:
        raise ValueError(f"{path}: no camera record; expected at least one camera to render")
    return views


def evaluation_resolution(scene_path: str | os.PathLike, image_downscale_factor: int | None) -> TrainingResolution:
    """The resolution camera-JSON poses are rendered and evaluated at: `image_downscale_factor`
    when given (no long-side cap); otherwise the training resolution the scene file records
    (`scene.parquet.read_training_resolution`); otherwise the images' full size.

    Raises:
        FileNotFoundError, ValueError: the scene file's metadata cannot be read.
    """
    if image_downscale_factor is not None:
        return TrainingResolution(image_downscale_factor, sys.maxsize)
    return read_training_resolution(scene_path) or TrainingResolution(1, sys.maxsize)


def image_metrics(render: np.ndarray, ground_truth: np.ndarray, lpips: LPIPS | None = None) -> dict[str, float]:
    """{"psnr": dB, "ssim": .., and "lpips" when `lpips` is given} of two [H, W, 3] uint8 images,
    both scaled to [0, 1] (float32; LPIPS on the weights' device)."""
    pred = torch.from_numpy(render).float() / 255.0
    gt = torch.from_numpy(ground_truth).float() / 255.0
    scores = {"psnr": float(psnr(pred, gt)), "ssim": float(ssim(pred, gt))}
    if lpips is not None:
        scores["lpips"] = float(lpips(pred.to(lpips.device), gt.to(lpips.device)))
    return scores


def render_and_evaluate(scene_path: str | os.PathLike, poses_path: str | os.PathLike,
                        output_prefix: str | os.PathLike, gt_prefix: str | os.PathLike | None = None,
                        video_path: str | os.PathLike | None = None, fps: float = 30.0,
                        background: tuple[float, float, float] = (0.0, 0.0, 0.0),
                        image_downscale_factor: int | None = None,
                        lpips_weights: str | os.PathLike | None = None,
                        width: int | None = None, height: int | None = None) -> dict | None:
    """Render every pose of `poses_path` and evaluate the ones with images (module docstring).

    An empty scene renders the background; `render_warnings` warns about an empty or degenerate
    scene and names the cameras that see none of it.

    Args:
        scene_path: trained scene (any format `read_scene` reads).
        poses_path: camera JSON or poses.pt (`load_render_views`).
        output_prefix: output folder (created).
        gt_prefix: folder for the ground-truth PNGs; default `output_prefix/gt`.
        video_path: MP4 of the renders in pose order (H.264, `write_video`), or None.
        fps: video frame rate.
        background: RGB in [0, 1] behind the Gaussians (and under transparent ground truth).
        image_downscale_factor: evaluate JSON poses at the image size divided by this; None: at
            the scene's training resolution (`evaluation_resolution`).
        lpips_weights: LPIPS AlexNet weights file (`taichi_3dgs.lpips.load_lpips`): also score
            LPIPS; None: PSNR and SSIM only.
        width, height: render every pose at this size (`load_render_views`; no metrics then).

    Returns:
        The metrics dict written to metrics.json, or None when no pose has an image.

    Raises:
        FileNotFoundError, ValueError: unreadable inputs (naming the file); a video of poses
            with different image sizes; nothing is rendered then.
        OSError: outputs cannot be written.
    """
    resolution = evaluation_resolution(scene_path, image_downscale_factor)
    views = load_render_views(poses_path, resolution.image_downscale_factor, resolution.max_image_long_side,
                              width, height)
    if video_path is not None:
        if Path(video_path).suffix.lower() != ".mp4":
            raise ValueError(f"--video {video_path}: expected an .mp4 file name")
        if len({(view.width, view.height) for view in views}) > 1:
            raise ValueError(f"{poses_path}: the poses have different image sizes, which one "
                             "video cannot hold; render without --video")
        if fps <= 0:
            raise ValueError(f"--fps: expected > 0, got {fps}")
    lpips = None
    if lpips_weights is not None:
        try:
            lpips = load_lpips(lpips_weights, torch_device())
        except (FileNotFoundError, ValueError) as error:
            raise type(error)(f"--lpips_weights {error}") from None
        for index, view in enumerate(views):
            if view.target is not None:
                check_image_size(view.width, view.height, f"--lpips_weights: {poses_path}: record {index}")
    scene = read_scene(scene_path).to(torch_device())
    warn_degenerate_scene(scene, str(scene_path), [view.viewmat for view in views])
    output_prefix = Path(output_prefix)
    with removed_on_error(output_prefix):  # a failed write leaves no half-filled new folder
        gt_dir = Path(gt_prefix) if gt_prefix is not None else output_prefix / "gt"
        frames, rows, blind = [], [], []
        for index, view in enumerate(views):
            rendered = render_scene_view(scene, view.viewmat, view.K, view.width, view.height, background)
            if scene.num_gaussians and is_blind(rendered.alpha):  # an empty scene was warned about
                blind.append(index)
            pixels = to_uint8(rendered.image)
            save_png(output_prefix / "renders" / f"{view.name}.png", pixels)
            if video_path is not None:
                frames.append(pixels)
            if view.target is not None:
                ground_truth = to_uint8(view.target.target(torch.tensor(background, dtype=torch.float32)))
                save_png(gt_dir / f"{view.name}.png", ground_truth)
                rows.append({"name": view.name, "image_path": str(view.image_path),
                             **image_metrics(pixels, ground_truth, lpips)})
        warn_blind_views(blind, "camera", str(poses_path))
        if video_path is not None:
            write_video(video_path, frames, fps)
        if not rows:
            return None
        score_keys = ("psnr", "ssim") if lpips is None else ("psnr", "ssim", "lpips")
        evaluation = EvaluationResult.of_views([ViewScore(row["name"], **{key: row[key] for key in score_keys},
                                                          image_path=row["image_path"]) for row in rows])
        metrics = write_metrics(output_prefix / "metrics.json", evaluation, scene.num_gaussians,
                                inputs={"scene": str(scene_path), "poses": str(poses_path)})
        _write_metrics_csv(output_prefix / "metrics.csv", rows, {key: metrics["val"][key] for key in score_keys})
        return metrics


def _write_metrics_csv(path: Path, rows: list[dict], mean: dict[str, float]) -> None:
    """metrics.csv: name,image_path,<score keys> per view, then a row named "mean", atomically."""
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=["name", "image_path", *mean], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    writer.writerow({"name": "mean", "image_path": "", **mean})
    write_text_atomic(path, table.getvalue())


def write_video(path: str | os.PathLike, frames: list[np.ndarray], fps: float) -> None:
    """Encode [H, W, 3] uint8 frames (one size) as an H.264 MP4, atomically.

    Uses imageio-ffmpeg (the backend of imageio's ffmpeg plugin) directly, since the plugin
    chooses the container from the file suffix and the temporary file of the atomic write has
    none; the container is therefore always MP4. H.264 needs even sizes: odd ones are scaled up
    to the next even size (`macro_block_size=2`).
    """
    height, width = frames[0].shape[:2]
    with atomic_path(path) as tmp:
        writer = imageio_ffmpeg.write_frames(str(tmp), (width, height), fps=fps, codec="libx264",
                                             macro_block_size=2, output_params=["-f", "mp4"])
        writer.send(None)  # start the generator
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
