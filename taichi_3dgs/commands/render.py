"""Render a trained scene at every pose of a camera JSON or a poses.pt camera path; for poses
with images, write ground truth and per-view PSNR / SSIM (and LPIPS with --lpips_weights);
optionally an MP4.

    python gaussian_point_render.py --scene scene.parquet --cameras val.json --output_dir out
    python gaussian_point_render.py --scene scene.parquet --cameras poses.pt \\
        --output_dir out --video out/flythrough.mp4 --fps 30

Writes out/renders/00000.png ..., out/gt/00000.png ... (or under --gt_dir), and
out/metrics.json + out/metrics.csv (see taichi_3dgs/viewer/evaluation.py). A camera JSON is
evaluated at the training resolution the scene file records (or --image_downscale_factor);
--width / --height render every pose at another size (without metrics).
"""
from __future__ import annotations

from taichi_3dgs.cli import ToolParser, positive_int, run_tool


def main(argv: list[str] | None = None, prog: str = "gaussian_point_render.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = ToolParser(prog, __doc__)
    parser.add_argument("--scene", required=True, deprecated=("--parquet_path",),
                        help="trained scene (.parquet, .ply, .compressed.ply, .sog, .spz, .glb or .splat)")
    parser.add_argument("--cameras", required=True, deprecated=("--poses",),
                        help="camera JSON (train.json / val.json) or poses.pt camera path")
    parser.add_argument("--output_dir", required=True, deprecated=("--output_prefix",), help="output folder")
    parser.add_argument("--gt_dir", deprecated=("--gt_prefix",),
                        help="folder for the ground-truth PNGs (default: OUTPUT_DIR/gt)")
    parser.add_argument("--video", help="MP4 file of the renders, in pose order")
    parser.add_argument("--fps", type=float, default=30.0, help="video frame rate")
    parser.add_argument("--white_background", action="store_true",
                        help="white instead of black background (also under transparent ground truth)")
    parser.add_argument("--image_downscale_factor", type=positive_int,
                        help="evaluate a camera JSON at the image size divided by this (the config's "
                             "image-downscale-factor; default: the training resolution the scene file records, "
                             "else full size)")
    parser.add_argument("--width", type=positive_int,
                        help="render every pose this many pixels wide (default: the pose's size; with --height "
                             "alone, from the pose's aspect); a camera JSON is then rendered without metrics")
    parser.add_argument("--height", type=positive_int, help="render every pose this many pixels high (as --width)")
    parser.add_argument("--lpips_weights",
                        help="LPIPS AlexNet weights file (docs/FORMATS.md, tools/make_lpips_weights.py): also "
                             "report LPIPS")
    args = parser.parse_args(argv)
    resized = args.width is not None or args.height is not None
    if resized and args.image_downscale_factor is not None:
        parser.error("--width/--height and --image_downscale_factor exclude each other")
    background = (1.0, 1.0, 1.0) if args.white_background else (0.0, 0.0, 0.0)

    def work() -> None:
        from taichi_3dgs.scene.parquet import read_training_resolution
        from taichi_3dgs.viewer.evaluation import render_and_evaluate

        recorded = read_training_resolution(args.scene)
        if recorded is not None and args.image_downscale_factor is None and not resized:
            print(f"at the scene's training resolution: image-downscale-factor {recorded.image_downscale_factor}, "
                  f"max-image-long-side {recorded.max_image_long_side}")
        metrics = render_and_evaluate(args.scene, args.cameras, args.output_dir, args.gt_dir, args.video,
                                      args.fps, background, args.image_downscale_factor, args.lpips_weights,
                                      args.width, args.height)
        if metrics is None:
            print(f"rendered to {args.output_dir}/renders (no ground-truth images, no metrics)")
        else:
            mean = metrics["val"]
            lpips = f", LPIPS {mean['lpips']:.4f}" if "lpips" in mean else ""
            print(f"{len(mean['per_view'])} views: mean PSNR {mean['psnr']:.3f} dB, SSIM {mean['ssim']:.4f}{lpips}"
                  f" -> {args.output_dir}/metrics.json")

    return run_tool(parser.prog, work, args.debug)

