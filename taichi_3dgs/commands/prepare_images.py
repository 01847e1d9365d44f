"""Your own capture: photos or a video -> structure from motion (pycolmap) -> a prepared dataset.

    python tools/prepare_images.py --images photos/ --output_dir data/my_object
    python tools/prepare_images.py --video clip.mp4 --fps 2 --output_dir data/my_clip

Writes what prepare_colmap.py writes (train.json, val.json, point_cloud.parquet, train_config.yaml,
undistorted images) plus COLMAP's database and model in <output_dir>/colmap/. Photos are matched
exhaustively up to a few hundred, video frames sequentially. Ctrl-C leaves no half-written output;
the same command run again continues from the finished stages.
"""
from __future__ import annotations

import os
import sys

from taichi_3dgs.cli import EXIT_INTERRUPTED, ToolParser, debug_requested, positive_float, positive_int
from taichi_3dgs.data.cli import add_val_split_arguments, run_converter
from taichi_3dgs.data.converter_options import (DEFAULT_MAX_IMAGE_SIZE, DEFAULT_SFM_CAMERA_MODEL, DEFAULT_VAL_EVERY,
                                                DEFAULT_VIDEO_FPS, MAX_EXHAUSTIVE_IMAGES, SFM_CAMERA_MODELS,
                                                SFM_MATCHERS)


def main(argv: list[str] | None = None, prog: str = "prepare_images.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input, 130 Ctrl-C: then the process
    ends at once, see below)."""
    parser = ToolParser(prog, __doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", help="folder of photos (JPEG, PNG, TIFF, BMP; subfolders are not read)")
    source.add_argument("--video", help="video file (MP4, MOV, ... anything ffmpeg decodes)")
    parser.add_argument("--output_dir", required=True, help="folder to write (new, empty, or an earlier output)")
    frames = parser.add_mutually_exclusive_group()
    frames.add_argument("--fps", type=positive_float,
                        help=f"video: frames kept per second, the sharpest of each window "
                             f"(default {DEFAULT_VIDEO_FPS:g})")
    frames.add_argument("--num_frames", type=positive_int, help="video: frames kept in all, instead of --fps")
    parser.add_argument("--camera_model", choices=SFM_CAMERA_MODELS, default=DEFAULT_SFM_CAMERA_MODEL,
                        help="COLMAP camera model (OPENCV for strong lens distortion; distorted images are "
                             "undistorted as prepare_colmap.py does)")
    parser.add_argument("--single_camera", action="store_true",
                        help="one camera for all photos (the default when they all have one size)")
    parser.add_argument("--max_image_size", type=positive_int, default=DEFAULT_MAX_IMAGE_SIZE,
                        help="longest side in pixels used for feature extraction")
    parser.add_argument("--matcher", choices=SFM_MATCHERS, default="auto",
                        help=f"auto: exhaustive up to {MAX_EXHAUSTIVE_IMAGES} photos, then vocab_tree with "
                             "--vocab_tree, else sequential by file name; sequential for a video")
    parser.add_argument("--vocab_tree", help="COLMAP vocabulary tree file for --matcher vocab_tree (from COLMAP's "
                                             "releases, of the format of the installed pycolmap; never downloaded "
                                             "here)")
    add_val_split_arguments(parser, f"every {DEFAULT_VAL_EVERY}th image by name")
    parser.add_argument("--image_downscale_factor", type=positive_int, default=1,
                        help="image downscale factor written into train_config.yaml")
    args = parser.parse_args(argv)
    if args.images and (args.fps or args.num_frames):
        parser.error("--fps / --num_frames choose video frames; drop them for --images")
    if args.matcher == "vocab_tree" and not args.vocab_tree:
        parser.error("--matcher vocab_tree needs --vocab_tree FILE")
    from taichi_3dgs.data.capture import prepare_capture
    from taichi_3dgs.data.structure_from_motion import SfmOptions, quiet_colmap

    quiet_colmap(debug_requested(args.debug))
    options = SfmOptions(camera_model=args.camera_model, single_camera=args.single_camera or None,
                         max_image_size=args.max_image_size, matcher=args.matcher, vocab_tree=args.vocab_tree)
    fps = None if args.images or args.num_frames else (args.fps or DEFAULT_VIDEO_FPS)
    exit_code = run_converter(parser.prog, args, prepare_capture, output_dir=args.output_dir, images=args.images,
                              video=args.video, fps=fps, num_frames=args.num_frames, options=options,
                              val_every=None if args.no_val else (args.val_every or DEFAULT_VAL_EVERY),
                              image_downscale_factor=args.image_downscale_factor)
    if exit_code == EXIT_INTERRUPTED:
        # A cancelled pycolmap call returns before its own threads have stopped, and the
        # interpreter's normal exit would then abort in their destructors: leave at once.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)
    return exit_code

