#!/usr/bin/env python3
"""Write a smooth elliptical fly-through around a capture's focus point as poses.pt.

    python tools/generate_ellipse_path.py --cameras train.json --n_frames 120 --output poses.pt

The path circles the point closest to all cameras' optical axes at the cameras' mean height, "up"
being the cameras' mean up direction (taichi_3dgs/viewer/camera_paths.py `ellipse_path`); every
frame uses the first camera's intrinsics and image size. poses.pt layout:
taichi_3dgs/viewer/poses.py. Render it with gaussian_point_render.py --poses poses.pt.
"""
from __future__ import annotations

import argparse
import sys

from taichi_3dgs.data.cameras import read_cameras_json
from taichi_3dgs.viewer.poses import ellipse_camera_path, save_camera_path


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", required=True, help="camera JSON (train.json)")
    parser.add_argument("--n_frames", type=int, default=120, help="frames of the path (default 120)")
    parser.add_argument("--output", required=True, help="poses.pt file to write")
    args = parser.parse_args(argv)
    try:
        camera_path = ellipse_camera_path(read_cameras_json(args.cameras), args.n_frames)
        save_camera_path(args.output, camera_path)
    except (OSError, ValueError) as error:
        print(f"generate_ellipse_path: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {len(camera_path.viewmats)} poses to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
