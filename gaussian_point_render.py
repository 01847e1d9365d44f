#!/usr/bin/env python3
"""Render a trained scene at every pose of a camera JSON or a poses.pt camera path; for poses
with images, write ground truth and per-view PSNR / SSIM (and LPIPS with --lpips_weights);
optionally an MP4.

    python gaussian_point_render.py --scene scene.parquet --cameras val.json --output_dir out
    python gaussian_point_render.py --scene scene.parquet --cameras poses.pt \\
        --output_dir out --video out/flythrough.mp4 --fps 30

Writes out/renders/00000.png ..., out/gt/00000.png ... (or under --gt_dir), and
out/metrics.json + out/metrics.csv (see taichi_3dgs/viewer/evaluation.py).
"""
from __future__ import annotations

import sys

from taichi_3dgs.cli import ToolParser, positive_int, run_tool


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = ToolParser("gaussian_point_render.py", __doc__)
    parser.add_argument("--scene", required=True, deprecated=("--parquet_path",),
                        help="trained scene (.parquet or .ply)")
    parser.add_argument("--cameras", required=True, deprecated=("--poses",),
                        help="camera JSON (train.json / val.json) or poses.pt camera path")
    parser.add_argument("--output_dir", required=True, deprecated=("--output_prefix",), help="output folder")
    parser.add_argument("--gt_dir", deprecated=("--gt_prefix",),
                        help="folder for the ground-truth PNGs (default: OUTPUT_DIR/gt)")
    parser.add_argument("--video", help="MP4 file of the renders, in pose order")
    parser.add_argument("--fps", type=float, default=30.0, help="video frame rate")
    parser.add_argument("--white_background", action="store_true",
                        help="white instead of black background (also under transparent ground truth)")
    parser.add_argument("--image_downscale_factor", type=positive_int, default=1,
                        help="evaluate at the image size divided by this, as the scene was trained "
                             "(the config's image-downscale-factor)")
    parser.add_argument("--lpips_weights",
                        help="LPIPS AlexNet weights file (docs/FORMATS.md, tools/make_lpips_weights.py): also "
                             "report LPIPS")
    args = parser.parse_args(argv)
    background = (1.0, 1.0, 1.0) if args.white_background else (0.0, 0.0, 0.0)

    def work() -> None:
        from taichi_3dgs.viewer.evaluation import render_and_evaluate

        metrics = render_and_evaluate(args.scene, args.cameras, args.output_dir, args.gt_dir, args.video,
                                      args.fps, background, args.image_downscale_factor, args.lpips_weights)
        if metrics is None:
            print(f"rendered to {args.output_dir}/renders (no ground-truth images, no metrics)")
        else:
            mean = metrics["val"]
            lpips = f", LPIPS {mean['lpips']:.4f}" if "lpips" in mean else ""
            print(f"{len(mean['per_view'])} views: mean PSNR {mean['psnr']:.3f} dB, SSIM {mean['ssim']:.4f}{lpips}"
                  f" -> {args.output_dir}/metrics.json")

    return run_tool(parser.prog, work, args.debug)


if __name__ == "__main__":
    sys.exit(main())
