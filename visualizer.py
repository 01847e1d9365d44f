#!/usr/bin/env python3
"""View one or more trained scenes (.parquet or official .ply) in a window, or render an orbit
around them to PNG files without a window (--headless).

    python visualizer.py --scene a.parquet b.ply [--cameras train.json]
    python visualizer.py --scene a.parquet --headless --output_dir frames --n_frames 60

Keys: 0 camera / 1-9 object, w/s a/d -/= move, q/e turn, left-drag rotate, h hide, p show,
[ ] previous/next dataset camera, c screenshot, Escape quit (see taichi_3dgs/viewer/controller.py).
Without --cameras the headless orbit circles the scene about its up axis (the point cloud's axis of
least spread), looking down at it; with --cameras it follows an ellipse through the dataset cameras.
"""
from __future__ import annotations

import sys

from taichi_3dgs.cli import ToolParser, positive_int, run_tool


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = ToolParser("visualizer.py", __doc__)
    parser.add_argument("--scene", "--parquet_path_list", nargs="+", required=True, dest="scenes",
                        help="trained scenes (.parquet or .ply), each a movable object")
    parser.add_argument("--width", type=positive_int,
                        help="image width in pixels (default: the first camera's, at most 1280 on the long side, or "
                             "from --height and its aspect; 960 without cameras)")
    parser.add_argument("--height", type=positive_int,
                        help="image height in pixels (default: as --width; 540 without cameras)")
    parser.add_argument("--cameras", help="camera JSON (train.json) to start from and step through")
    parser.add_argument("--screenshot_dir", default="screenshots", help="folder for screenshots (key c)")
    parser.add_argument("--headless", action="store_true", help="render an orbit to PNGs, no window")
    parser.add_argument("--output_dir", help="folder for the headless frames")
    parser.add_argument("--n_frames", type=positive_int, default=120, help="headless orbit frames")
    args = parser.parse_args(argv)
    if args.headless and not args.output_dir:
        parser.error("--headless needs --output_dir")

    def work() -> None:
        from taichi_3dgs.viewer.app import render_orbit, run_viewer

        if args.headless:
            written = render_orbit(args.scenes, args.output_dir, args.n_frames, args.width, args.height,
                                   args.cameras)
            print(f"wrote {len(written)} frames to {args.output_dir}")
        else:
            run_viewer(args.scenes, args.width, args.height, args.cameras, args.screenshot_dir)

    return run_tool(parser.prog, work, args.debug)


if __name__ == "__main__":
    sys.exit(main())
