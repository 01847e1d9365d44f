#!/usr/bin/env python3
"""Render a trained scene at every pose of a camera JSON or a poses.pt camera path; for poses
with images, write ground truth and per-view PSNR / SSIM; optionally an MP4.

    python gaussian_point_render.py --parquet_path scene.parquet --poses val.json --output_prefix out
    python gaussian_point_render.py --parquet_path scene.parquet --poses poses.pt \\
        --output_prefix out --video out/flythrough.mp4 --fps 30

Writes out/renders/00000.png ..., out/gt/00000.png ... (or under --gt_prefix), and
out/metrics.json + out/metrics.csv (see taichi_3dgs/viewer/evaluation.py).
"""
from __future__ import annotations

import argparse
import sys

from taichi_3dgs.viewer.evaluation import render_and_evaluate


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parquet_path", required=True, help="trained scene (.parquet or .ply)")
    parser.add_argument("--poses", required=True,
                        help="camera JSON (train.json / val.json) or poses.pt camera path")
    parser.add_argument("--output_prefix", required=True, help="output folder")
    parser.add_argument("--gt_prefix", help="folder for the ground-truth PNGs (default OUTPUT_PREFIX/gt)")
    parser.add_argument("--video", help="MP4 file of the renders, in pose order")
    parser.add_argument("--fps", type=float, default=30.0, help="video frame rate (default 30)")
    parser.add_argument("--white_background", action="store_true",
                        help="white instead of black background (also under transparent ground truth)")
    parser.add_argument("--image_downscale_factor", type=int, default=1,
                        help="evaluate at the image size divided by this, as the scene was trained "
                             "(the config's image-downscale-factor; default 1)")
    args = parser.parse_args(argv)
    background = (1.0, 1.0, 1.0) if args.white_background else (0.0, 0.0, 0.0)
    try:
        metrics = render_and_evaluate(args.parquet_path, args.poses, args.output_prefix,
                                      args.gt_prefix, args.video, args.fps, background,
                                      args.image_downscale_factor)
    except (OSError, ValueError) as error:
        print(f"gaussian_point_render: error: {error}", file=sys.stderr)
        return 1
    if metrics is None:
        print(f"rendered to {args.output_prefix}/renders (no ground-truth images, no metrics)")
    else:
        mean = metrics["mean"]
        print(f"{len(metrics['views'])} views: mean PSNR {mean['psnr']:.3f} dB, SSIM {mean['ssim']:.4f}"
              f" -> {args.output_prefix}/metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
