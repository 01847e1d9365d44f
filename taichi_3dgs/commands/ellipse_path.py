"""Write a smooth elliptical fly-through around a capture's focus point as poses.pt.

    python tools/generate_ellipse_path.py --cameras data/colmap_desk/train.json --n_frames 120 --output poses.pt

The path circles the point closest to all cameras' optical axes at the cameras' mean height, "up"
being the cameras' mean up direction (taichi_3dgs/viewer/camera_paths.py `ellipse_path`); every
frame uses the first camera's intrinsics and image size (or --width / --height, K rescaled).
poses.pt layout: docs/FORMATS.md.
Render it with gaussian_point_render.py --cameras poses.pt.
"""
from __future__ import annotations

from taichi_3dgs.cli import ToolParser, positive_int, run_tool


def main(argv: list[str] | None = None, prog: str = "generate_ellipse_path.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = ToolParser(prog, __doc__)
    parser.add_argument("--cameras", required=True, help="camera JSON (train.json)")
    parser.add_argument("--n_frames", type=positive_int, default=120, help="frames of the path")
    parser.add_argument("--output", required=True, help="poses.pt file to write")
    parser.add_argument("--width", type=positive_int,
                        help="image width of the path in pixels (default: the first camera's; with --height alone, "
                             "from its aspect)")
    parser.add_argument("--height", type=positive_int, help="image height of the path in pixels (as --width)")
    args = parser.parse_args(argv)

    def work() -> None:
        from taichi_3dgs.data.camera_checks import requested_size
        from taichi_3dgs.data.cameras import read_cameras_json
        from taichi_3dgs.viewer.poses import ellipse_camera_path, save_camera_path

        if not args.output.lower().endswith(".pt"):  # a .json would later be read as a camera JSON
            raise ValueError(f"--output {args.output}: expected a poses.pt file name ending in .pt")
        cameras = read_cameras_json(args.cameras)
        if cameras:  # the path takes the first camera's intrinsics, rescaled to the requested size
            cameras[0] = cameras[0].scaled(*requested_size(args.width, args.height, cameras[0].width,
                                                           cameras[0].height))
        try:
            camera_path = ellipse_camera_path(cameras, args.n_frames)
        except ValueError as error:  # the path's reasons (too few cameras, parallel axes) name no file
            raise ValueError(f"{args.cameras}: {error}") from error
        save_camera_path(args.output, camera_path)
        print(f"wrote {len(camera_path.viewmats)} poses to {args.output}")

    return run_tool(parser.prog, work, args.debug)

