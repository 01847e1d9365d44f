#!/usr/bin/env python3
"""View one or more trained scenes (.parquet or official .ply) in a window, or render an orbit
around them to PNG files without a window (--headless).

    python visualizer.py --parquet_path_list a.parquet b.ply [--cameras train.json]
    python visualizer.py --parquet_path_list a.parquet --headless --output_dir frames --n_frames 60

Keys: 0 camera / 1-9 object, w/s a/d -/= move, q/e turn, left-drag rotate, h hide, p show,
[ ] previous/next dataset camera, c screenshot, Escape quit (see taichi_3dgs/viewer/controller.py).
"""
from __future__ import annotations

import argparse
import sys

from taichi_3dgs.viewer.app import render_orbit, run_viewer


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parquet_path_list", nargs="+", required=True,
                        help="trained scenes (.parquet or .ply), each a movable object")
    parser.add_argument("--width", type=int, help="image width in pixels")
    parser.add_argument("--height", type=int, help="image height in pixels")
    parser.add_argument("--cameras", help="camera JSON (train.json) to start from and step through")
    parser.add_argument("--screenshot_dir", default="screenshots",
                        help="folder for screenshots (key c); default ./screenshots")
    parser.add_argument("--headless", action="store_true", help="render an orbit to PNGs, no window")
    parser.add_argument("--output_dir", help="folder for the headless frames")
    parser.add_argument("--n_frames", type=int, default=120, help="headless orbit frames (default 120)")
    args = parser.parse_args(argv)
    if args.headless and not args.output_dir:
        parser.error("--headless needs --output_dir")
    try:
        if args.headless:
            written = render_orbit(args.parquet_path_list, args.output_dir, args.n_frames,
                                   args.width, args.height, args.cameras)
            print(f"wrote {len(written)} frames to {args.output_dir}")
        else:
            run_viewer(args.parquet_path_list, args.width, args.height, args.cameras,
                       args.screenshot_dir)
    except (OSError, ValueError, RuntimeError) as error:
        print(f"visualizer: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
