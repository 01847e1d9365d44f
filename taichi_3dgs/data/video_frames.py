"""Frames of a video for structure from motion: the sharpest frame of each time window.

The video is decoded once with imageio-ffmpeg (ffmpeg applies the rotation a phone stores in the
file). Frames are cut into consecutive windows of `round(video fps / fps)` frames (`fps`), or of
`ceil(duration x frame rate / num_frames)` frames (`num_frames`), and the sharpest frame of each window is
kept: the one with the largest variance of the Laplacian of its green channel (Pech-Pacheco et al.,
"Diatom autofocusing in brightfield microscopy: a comparative study", ICPR 2000), so frames blurred
by motion, which feature matching cannot use, are skipped whenever the window holds a sharper one.
"""
from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PIL import Image

from taichi_3dgs.atomic_io import atomic_path

FRAME_NAME = "frame_{:06d}.jpg"
"""File name of a kept frame: its 0-based frame number in the video, so names sort in time order."""
JPEG_QUALITY = 95


@dataclass(frozen=True)
class VideoFrames:
    """What `extract_sharpest_frames` wrote.

    Attributes:
        paths: the kept frames, in time order.
        num_decoded: the frames decoded from the video.
        video_fps: the video's frame rate (frames per second) as ffmpeg reports it.
        window: frames per window.
    """

    paths: list[Path]
    num_decoded: int
    video_fps: float
    window: int


def laplacian_variance(grey: np.ndarray) -> float:
    """Sharpness of a grey image: the variance of its 4-neighbour Laplacian (interior pixels).

    Args:
        grey: [H, W] array of grey values (any real dtype; H, W >= 3).

    Returns:
        The variance, in squared grey units; larger is sharper.
    """
    grey = grey.astype(np.float32)
    laplacian = (grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1])
    return float(laplacian.var())


def _decode(video: Path) -> tuple[dict, Iterator[bytes]]:
    """(ffmpeg's meta data, the RGB24 frames) of `video`; ValueError naming it when ffmpeg cannot read it."""
    import imageio_ffmpeg

    if not video.is_file():
        raise FileNotFoundError(f"{video}: video file not found")
    frames = imageio_ffmpeg.read_frames(str(video))
    reason = None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)  # see extract_sharpest_frames
        try:
            meta = next(frames)
        except (OSError, RuntimeError, StopIteration) as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        if reason is not None:  # outside the except block, so ffmpeg's pipes are released here
            frames.close()
            del frames
    if reason is not None:
        raise ValueError(f"{video}: cannot decode the video ({reason}); expected a video file ffmpeg reads "
                         "(MP4, MOV, ...)")
    return meta, frames


def extract_sharpest_frames(video: str | os.PathLike, output_dir: str | os.PathLike, *, fps: float | None = None,
                            num_frames: int | None = None,
                            progress: Callable[[int], None] | None = None) -> VideoFrames:
    """Decode `video` and write the sharpest frame of each window as JPEG into `output_dir`.

    Exactly one of `fps` and `num_frames` is given. Frames are named `FRAME_NAME` (quality 95,
    no chroma subsampling), each written atomically.

    Args:
        video: the video file.
        output_dir: folder for the frames; created if needed.
        fps: frames kept per second of video (> 0).
        num_frames: frames kept in all (>= 1).
        progress: called with 1 after each decoded frame (e.g. a tqdm bar's `update`).

    Returns:
        The frames written (see `VideoFrames`).

    Raises:
        FileNotFoundError: the video does not exist.
        ValueError: ffmpeg cannot decode it, it has no frame, or fps / num_frames is not as above.
    """
    video = Path(video)
    if (fps is None) == (num_frames is None):
        raise ValueError("give exactly one of fps and num_frames")
    if (fps is not None and not fps > 0) or (num_frames is not None and num_frames < 1):
        raise ValueError(f"fps is {fps} and num_frames {num_frames}; expected fps > 0 or num_frames >= 1")
    meta, frames = _decode(video)
    width, height = meta["size"]
    video_fps = float(meta.get("fps") or 0.0)
    if fps is not None:
        window = max(1, round(video_fps / fps)) if video_fps > 0 else 1
    else:
        # ffmpeg's duration x rate: the frame count without a second decoding pass.
        window = max(1, math.ceil(float(meta.get("duration") or 0.0) * video_fps / num_frames))
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    best: tuple[float, int, bytes] | None = None
    index = -1

    def keep(frame: tuple[float, int, bytes]) -> None:
        pixels = np.frombuffer(frame[2], dtype=np.uint8).reshape(height, width, 3)
        path = output_dir / FRAME_NAME.format(frame[1])
        with atomic_path(path) as tmp:
            Image.fromarray(pixels).save(tmp, format="JPEG", quality=JPEG_QUALITY, subsampling=0)
        paths.append(path)

    with warnings.catch_warnings():
        # imageio-ffmpeg's generator leaves ffmpeg's pipes to the garbage collector.
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            for index, data in enumerate(frames):
                # Green, the channel closest to luminance, stands for the grey values.
                grey = np.frombuffer(data, dtype=np.uint8).reshape(height, width, 3)[:, :, 1]
                score = laplacian_variance(grey)
                if best is None or score > best[0]:
                    best = (score, index, data)
                if (index + 1) % window == 0:
                    keep(best)
                    best = None
                if progress is not None:
                    progress(1)
        except (OSError, RuntimeError) as error:
            raise ValueError(f"{video}: decoding stopped at frame {index + 1} "
                             f"({str(error).splitlines()[0]})") from None
        finally:
            frames.close()
    if best is not None:
        keep(best)
    if not paths:
        raise ValueError(f"{video}: ffmpeg decoded no frame; expected a video with at least one frame")
    return VideoFrames(paths=paths, num_decoded=index + 1, video_fps=video_fps, window=window)
