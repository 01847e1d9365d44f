"""View one or more trained scenes (.parquet or official .ply) in a window, in a web browser
(--web), or render an orbit around them to PNG files without a window (--headless).

    python visualizer.py --scene a.parquet b.ply [--cameras train.json]
    python visualizer.py --scene a.parquet b.ply --web [--port 8080] [--host 127.0.0.1] [--cameras train.json]
    python visualizer.py --scene a.parquet --headless --output_dir frames --n_frames 60

Keys: 0 camera / 1-9 object, w/s a/d -/= move, q/e turn, left-drag rotate, h hide, p show,
[ ] previous/next dataset camera, c screenshot, Escape quit (see taichi_3dgs/viewer/controller.py).
Without --cameras the headless orbit circles the scene about its up axis (the point cloud's axis of
least spread), looking down at it; with --cameras it follows an ellipse through the dataset cameras.

--web serves a page at http://HOST:PORT (printed; from another machine: ssh -L 8080:localhost:8080
user@server, then open http://localhost:8080): drag to orbit, right-drag to pan, wheel to zoom;
the side panel sets resolution, SH degree, background, near plane, render mode (RGB, depth,
alpha), jumps to dataset cameras and shows, hides and moves each scene. Ctrl-C stops the server
and exits with code 130, like every interrupted tool (taichi_3dgs/cli.py).
"""
from __future__ import annotations

from taichi_3dgs.cli import DEFAULT_WEB_HOST, DEFAULT_WEB_PORT, ToolParser, port_number, positive_int, run_tool


def main(argv: list[str] | None = None, prog: str = "visualizer.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = ToolParser(prog, __doc__)
    parser.add_argument("--scene", "--parquet_path_list", nargs="+", required=True, dest="scenes",
                        help="trained scenes (.parquet, .ply or a web format: .compressed.ply, .sog, .spz, .glb, "
                             ".splat), each a movable object")
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
    parser.add_argument("--web", action="store_true",
                        help="serve the viewer as a web page instead of a window")
    parser.add_argument("--port", type=port_number, default=DEFAULT_WEB_PORT,
                        help="--web: TCP port of the page (0: any free port)")
    parser.add_argument("--host", default=DEFAULT_WEB_HOST,
                        help="--web: address to listen on (0.0.0.0: every network interface)")
    args = parser.parse_args(argv)
    if args.headless and not args.output_dir:
        parser.error("--headless needs --output_dir")
    if args.web and args.headless:
        parser.error("--web and --headless exclude each other")
    if args.web and (args.width or args.height):
        parser.error("--width/--height do not apply to --web (set the resolution in the page)")

    def work() -> None:
        if args.web:
            from taichi_3dgs.viewer.web import start_web_viewer

            with start_web_viewer(args.scenes, args.cameras, args.host, args.port) as viewer:
                print(f"{parser.prog}: serving the web viewer at {viewer.url} (Ctrl-C to stop)", flush=True)
                viewer.serve_forever()
            return

        from taichi_3dgs.viewer.app import render_orbit, run_viewer

        if args.headless:
            written = render_orbit(args.scenes, args.output_dir, args.n_frames, args.width, args.height,
                                   args.cameras)
            print(f"wrote {len(written)} frames to {args.output_dir}")
        else:
            run_viewer(args.scenes, args.width, args.height, args.cameras, args.screenshot_dir)

    return run_tool(parser.prog, work, args.debug)

