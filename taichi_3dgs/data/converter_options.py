"""What the dataset converters let a user choose, with its defaults: the validation split and the
number of initial points.

Standard library only, so that the tools' `--help` shows these defaults without loading numpy,
pandas or pycolmap.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Sequence

# graphdeco 3DGS (`--eval`) and the mip-NeRF 360 protocol hold out every 8th image.
DEFAULT_VAL_EVERY = 8
# Instant-NGP on a mesh: the original tool's default.
DEFAULT_MESH_SAMPLE_POINTS = 500
# Instant-NGP without a mesh: random points (the fox, 2,000 steps at 1/4 size: 500 -> 20.4 dB,
# 10,000 -> 21.5 dB, 50,000 -> 21.7 dB in a third more time; BENCHMARKS.md).
DEFAULT_RANDOM_POINTS = 10_000
# ... and its config adds this many `initial-points.random-in-view-volume` (each camera's frustum
# between the depths at which it sees the cloud): the fox, 1,000 steps at 1/8 size, 20.6 -> 24.6 dB
# (BENCHMARKS.md "Quality over every shared capture"). Not for COLMAP clouds (tumbler -1.1 dB, bronze
# bust -2.5 dB) nor NeRF-synthetic scenes (nothing behind the object; chair -0.4 dB).
NGP_VIEW_VOLUME_POINTS = 10_000
# The COLMAP and Instant-NGP configs add this many `initial-points.beyond-cloud` (on training pixel
# rays, past the depths at which each camera sees the cloud): the scene behind and around an object
# starts covered (BENCHMARKS.md "Quality over every shared capture": it passes the rule for
# defaults over the shared captures). Not for images with alpha, composited over a plain colour.
BEYOND_CLOUD_POINTS = 10_000
# NeRF-synthetic / BlenderNeRF: graphdeco 3DGS initialises these scenes with 100k random points.
DEFAULT_BLENDER_POINTS = 100_000
# The CPU-sized run that the converters suggest beside the official 30,000-step schedule they
# write: 2,000 steps at 1/4 resolution; the config's `scale-schedule: true` scales the schedule's
# phases to it (densifying until step 1,000, as the shipped config/*.yaml).
QUICK_RUN_OVERRIDES = {"num-iterations": 2000}
QUICK_RUN_DOWNSCALE = 4


def read_image_list(path: str | os.PathLike) -> list[str]:
    """Image names, one per line (blank lines and lines starting with # skipped).

    Raises:
        FileNotFoundError / OSError: the list cannot be read.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def split_validation(names: Sequence[str], val_every: int | None,
                     val_names: Iterable[str] | None = None, source: str = "") -> list[bool]:
    """Which of `names` (already in split order) go to validation.

    With `val_names`, exactly the images whose name or base name is listed; otherwise
    index % val_every == 0 (none when val_every is None or 0).

    Raises:
        ValueError: a listed name matches no image, or val_every < 0; `source` names the list file.
    """
    if val_names is not None:
        wanted = set(val_names)
        is_val = [name in wanted or Path(name).name in wanted for name in names]
        known = set(names) | {Path(name).name for name in names}
        unknown = sorted(wanted - known)
        if unknown:
            raise ValueError(f"{source}: {len(unknown)} listed image(s) are not in the dataset, e.g. {unknown[:3]}; "
                             "expected image names as the dataset names them")
        return is_val
    if val_every is not None and val_every < 0:
        raise ValueError(f"val_every is {val_every}; expected a positive number, or 0 for no validation images")
    return [bool(val_every) and index % val_every == 0 for index in range(len(names))]


# Structure from motion (tools/prepare_images.py). COLMAP's own default camera: one radial
# distortion term, what COLMAP recommends when the intrinsics are unknown.
SFM_CAMERA_MODELS = ("SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV", "FULL_OPENCV")
DEFAULT_SFM_CAMERA_MODEL = "SIMPLE_RADIAL"
# Longest image side for feature extraction: 24-megapixel photos stay within a laptop's memory.
DEFAULT_MAX_IMAGE_SIZE = 1600
# Exhaustive matching compares n (n - 1) / 2 pairs; beyond this many photos a retrieval (vocabulary
# tree) or sequential matcher is used instead (docs/FORMATS.md "From photos or a video").
MAX_EXHAUSTIVE_IMAGES = 300
SFM_MATCHERS = ("auto", "exhaustive", "sequential", "vocab_tree")
# Frames kept per second of video.
DEFAULT_VIDEO_FPS = 2.0
