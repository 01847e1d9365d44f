"""Your own capture -> prepared dataset: photos or a video through structure from motion.

    <output_dir>/train.json, val.json, point_cloud.parquet, train_config.yaml, images/
                                  what tools/prepare_colmap.py writes for the model below
    <output_dir>/colmap/database.db, stages.json, sparse/0/
                                  COLMAP's database and model (taichi_3dgs.data.structure_from_motion)
    <output_dir>/colmap/images/   the frames kept from a video (photos stay where they are)

Everything is made in a staging folder beside the output, `.<name>.prepare-staging`, renamed to
`output_dir` only once complete: Ctrl-C leaves no half-written output, and the same command run
again continues from the stages the staging folder (or an earlier output) holds. Bad input is
refused before anything is written.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Sequence

from PIL import Image
from tqdm import tqdm

from taichi_3dgs.atomic_io import write_text_atomic
from taichi_3dgs.data.colmap import convert_colmap
from taichi_3dgs.data.converter_options import DEFAULT_VAL_EVERY, MAX_EXHAUSTIVE_IMAGES
from taichi_3dgs.data.prepared_dataset import (IMAGES_DIR, POINT_CLOUD_PARQUET, TRAIN_CONFIG_YAML, TRAIN_JSON, VAL_JSON,
                                               PreparedDataset)
from taichi_3dgs.data.structure_from_motion import (STAGES, STAGES_JSON, SfmOptions, SfmResult,
                                                    run_structure_from_motion)
from taichi_3dgs.data.video_frames import extract_sharpest_frames

COLMAP_DIR = "colmap"
FRAMES_JSON = "frames.json"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
MIN_IMAGES = 3
OUTPUT_NAMES = (TRAIN_JSON, VAL_JSON, POINT_CLOUD_PARQUET, TRAIN_CONFIG_YAML, IMAGES_DIR, COLMAP_DIR)
"""What prepare_images writes into the output folder (a rerun replaces these and keeps the rest)."""


def list_photos(image_dir: Path) -> tuple[list[str], set[tuple[int, int]]]:
    """The image files of `image_dir` (not its subfolders), sorted, and their (width, height) sizes.

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: no image file in it, fewer than 3, or files Pillow cannot decode (named).
    """
    if not image_dir.is_dir():
        raise FileNotFoundError(f"{image_dir}: images folder does not exist")
    names = sorted(p.name for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not names:
        raise ValueError(f"{image_dir}: no image files; expected photos named *{', *'.join(IMAGE_SUFFIXES)}")
    sizes, unreadable = set(), []
    for name in names:
        try:
            with Image.open(image_dir / name) as image:
                sizes.add(image.size)
                image.draft("RGB", (image.width // 8, image.height // 8))  # JPEG: decode at 1/8 scale
                image.load()
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            unreadable.append(f"{name} ({error})")
    if unreadable:
        raise ValueError(f"{image_dir}: {len(unreadable)} unreadable image file(s): {'; '.join(unreadable[:5])}; "
                         "expected images Pillow decodes (remove or replace them)")
    _check_count(image_dir, len(names), "images")
    return names, sizes


def _check_count(source: Path, count: int, what: str) -> None:
    if count < MIN_IMAGES:
        raise ValueError(f"{source}: {count} {what}; structure from motion needs at least {MIN_IMAGES} "
                         "overlapping views (20 or more for a good scene)")


def _check_output(output: Path) -> None:
    """Refuse an output path that is a file or a folder of other files (never overwrite them)."""
    if output.exists() and not output.is_dir():
        raise ValueError(f"{output}: exists and is not a folder; expected a new folder for --output_dir")
    if output.is_dir() and any(output.iterdir()) and not (output / COLMAP_DIR / STAGES_JSON).is_file():
        raise ValueError(f"{output}: folder exists and holds other files; expected a new or empty folder, "
                         "or one that prepare_images.py wrote (its cameras, points, config, images/ and "
                         "colmap/ are then replaced, other files kept)")


def _staging(output: Path) -> Path:
    """The staging folder, beside `output` (or in its nearest existing ancestor, so that nothing is
    created for a failed run); it starts from an earlier output's COLMAP folder when there is one."""
    anchor = output.parent
    while not anchor.exists():
        anchor = anchor.parent
    stage = anchor / f".{output.name}.prepare-staging"
    if not stage.is_dir() and (output / COLMAP_DIR / STAGES_JSON).is_file():
        copy = Path(tempfile.mkdtemp(prefix=f".{output.name}.copy-", dir=anchor))
        shutil.copytree(output / COLMAP_DIR, copy / COLMAP_DIR)
        os.replace(copy, stage)  # whole, so an interrupted copy is never taken for a staging folder
    return stage


def _video_frames(video: Path, frames_dir: Path, fps: float | None, num_frames: int | None) -> tuple[list[str], str]:
    """Decode the video into frames_dir unless it holds the frames of the same video and settings."""
    stat = video.stat()
    settings = {"video": str(video.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "fps": fps, "num_frames": num_frames}
    record = frames_dir.parent / FRAMES_JSON
    try:
        recorded = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        recorded = {}
    if recorded.get("settings") == settings:
        return recorded["names"], recorded["message"]
    shutil.rmtree(frames_dir, ignore_errors=True)
    with tqdm(desc="frames", unit="frame", disable=None) as bar:
        frames = extract_sharpest_frames(video, frames_dir, fps=fps, num_frames=num_frames, progress=bar.update)
    names = [path.name for path in frames.paths]
    message = (f"video {video}: kept the sharpest of every {frames.window} frames ({frames.video_fps:g} fps): "
               f"{len(names)} of {frames.num_decoded} frames")
    write_text_atomic(record, json.dumps({"settings": settings, "names": names, "message": message}) + "\n")
    return names, message


def _choose_matcher(matcher: str, num_images: int, from_video: bool, vocab_tree: str | None) -> tuple[str, str]:
    """(the matcher to run, a line saying why) for `--matcher auto`, else the one asked for."""
    if matcher != "auto":
        return matcher, f"matching: {matcher} (asked for)"
    if from_video:
        return "sequential", "matching: sequential (video frames in time order)"
    if num_images <= MAX_EXHAUSTIVE_IMAGES:
        return "exhaustive", f"matching: exhaustive ({num_images} photos, every pair)"
    if vocab_tree:
        return "vocab_tree", f"matching: vocabulary tree ({num_images} photos > {MAX_EXHAUSTIVE_IMAGES})"
    return "sequential", (f"matching: sequential by file name ({num_images} photos > {MAX_EXHAUSTIVE_IMAGES}; "
                          "for photos not taken in name order pass --vocab_tree FILE or --matcher exhaustive)")


def _move_into_place(stage: Path, output: Path) -> None:
    """Rename the staging folder to `output`; into an existing one (empty, or an earlier output),
    replace what prepare_images writes and keep the rest (e.g. a training run's output/ and logs/)."""
    if not output.is_dir():
        output.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage, output)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
    for name in OUTPUT_NAMES:
        if (output / name).exists():
            os.replace(output / name, old / name)
    for item in sorted(stage.iterdir(), key=lambda path: path.name == TRAIN_CONFIG_YAML):
        os.replace(item, output / item.name)
    stage.rmdir()
    shutil.rmtree(old, ignore_errors=True)


def prepare_capture(output_dir: str | os.PathLike, *, images: str | os.PathLike | None = None,
                    video: str | os.PathLike | None = None, fps: float | None = None, num_frames: int | None = None,
                    options: SfmOptions = SfmOptions(), val_every: int | None = DEFAULT_VAL_EVERY,
                    image_downscale_factor: int = 1) -> PreparedDataset:
    """Run structure from motion on photos (`images`) or a video and write a prepared folder.

    `options.single_camera` None gives photos one shared camera when they all have one size, else
    one camera each; video frames always share one. `options.matcher` "auto" picks exhaustive
    matching up to MAX_EXHAUSTIVE_IMAGES photos, then the vocabulary tree when
    `options.vocab_tree` is given, else sequential; sequential for a video. The largest model is
    converted by `convert_colmap`. Photos are used as stored (EXIF orientation ignored, as COLMAP
    and the trainer do).

    Args:
        output_dir: the folder to write (module docstring).
        images / video: the photos' folder, or the video file (exactly one).
        fps / num_frames: frames kept from the video (one of them, see video_frames).
        options: the structure-from-motion choices.
        val_every, image_downscale_factor: as for `convert_colmap`.

    Returns:
        The prepared dataset; its messages hold the stage times, registered / total images, the
        unregistered images and the models left out.

    Raises:
        FileNotFoundError, ValueError: bad input or no model (one line; nothing written).
        KeyboardInterrupt: Ctrl-C (the staging folder keeps the finished stages for the next run).
    """
    if (images is None) == (video is None):
        raise ValueError("give exactly one of images and video")
    output = Path(os.path.abspath(output_dir))
    _check_output(output)
    if options.vocab_tree is not None and not Path(options.vocab_tree).is_file():
        raise FileNotFoundError(f"{options.vocab_tree}: vocabulary tree file not found; expected a COLMAP "
                                "vocabulary tree file (from COLMAP's releases)")
    if images is not None:
        image_dir = Path(os.path.abspath(images))
        names, sizes = list_photos(image_dir)
        if options.single_camera and len(sizes) > 1:
            raise ValueError(f"{image_dir}: --single_camera, but the photos have {len(sizes)} sizes "
                             f"({', '.join(f'{w}x{h}' for w, h in sorted(sizes))}); expected one size")
        if options.single_camera is None:
            options = dataclasses.replace(options, single_camera=len(sizes) == 1)
        source: Path | tuple[Path, list[str]] = (image_dir, names)
    else:
        source = Path(os.path.abspath(video))
        if not source.is_file():
            raise FileNotFoundError(f"{source}: video file not found")
        options = dataclasses.replace(options, single_camera=True)
    stage = _staging(output)
    try:
        return _prepare_in(stage, output, source, fps, num_frames, options, val_every, image_downscale_factor)
    except KeyboardInterrupt:
        print(f"interrupted: the finished stages are kept in {stage}; run the same command to continue")
        raise
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise


def _prepare_in(stage: Path, output: Path, source: Path | tuple[Path, list[str]], fps: float | None,
                num_frames: int | None, options: SfmOptions, val_every: int | None,
                image_downscale_factor: int) -> PreparedDataset:
    """prepare_capture's work in the staging folder, then the move into place."""
    messages = []
    decoding = None
    if isinstance(source, Path):
        start = time.perf_counter()
        image_dir = stage / COLMAP_DIR / "images"
        names, message = _video_frames(source, image_dir, fps, num_frames)
        _check_count(source, len(names), "frames kept")
        messages.append(message)
        decoding = time.perf_counter() - start
    else:
        image_dir, names = source
    matcher, why = _choose_matcher(options.matcher, len(names), isinstance(source, Path), options.vocab_tree)
    messages.append(why)
    options = dataclasses.replace(options, matcher=matcher)
    sfm = run_structure_from_motion(image_dir, names, stage / COLMAP_DIR, options)
    converted = convert_colmap(sfm.model_dir, stage, image_path=image_dir, val_every=val_every,
                               image_downscale_factor=image_downscale_factor)
    _move_into_place(stage, output)
    messages += _summary(sfm, decoding, options)
    messages += [message.replace(str(stage), str(output)) for message in converted.messages[1:]]
    return PreparedDataset(output_dir=output, num_train=converted.num_train, num_val=converted.num_val,
                           num_points=converted.num_points, messages=messages)


def _summary(sfm: SfmResult, decoding: float | None, options: SfmOptions) -> list[str]:
    """The lines on cameras, stage times, registration and what was left out."""
    shared, camera_model = options.single_camera, options.camera_model
    times = [f"{stage} {sfm.seconds[stage]:.1f} s" + (" (reused)" if stage in sfm.reused else "")
             for stage in STAGES]
    if decoding is not None:
        times.insert(0, f"frames {decoding:.1f} s")
    lines = [f"{'one shared' if shared else 'one'} {camera_model} camera{'' if shared else ' per image'}; "
             f"{', '.join(times)}",
             f"registered {len(sfm.registered)} of {sfm.num_images} images, {sfm.num_points} points"]
    if sfm.num_models > 1:
        lines.append(f"the mapper made {sfm.num_models} disconnected models: kept the largest; "
                     f"{len(sfm.left_out)} images only in the others are left out: {_names(sfm.left_out)}")
    unregistered = sorted(set(sfm.unregistered) - set(sfm.left_out))
    if unregistered:
        lines.append(f"not registered ({len(unregistered)}): {_names(unregistered)}")
    return lines


def _names(names: Sequence[str], limit: int = 20) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")
