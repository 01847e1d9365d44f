"""Generate the procedural demo scene: `tools/make_demo_scene.py --output_dir data/demo`.

Writes images/, depths/ (exact depth maps), train.json, val.json and point_cloud.parquet (see
taichi_3dgs.data.demo_scene); `config/demo.yaml` trains it.
"""
from __future__ import annotations

from taichi_3dgs.cli import ToolParser, positive_int, run_tool
from taichi_3dgs.data.demo_scene import DemoSceneSpec, make_demo_scene


def main(argv: list[str] | None = None, prog: str = "make_demo_scene.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    defaults = DemoSceneSpec()
    parser = ToolParser(prog, __doc__)
    parser.add_argument("--output_dir", required=True, help="folder to write the scene into")
    parser.add_argument("--width", type=positive_int, default=defaults.width, help="image width in pixels")
    parser.add_argument("--height", type=positive_int, default=defaults.height, help="image height in pixels")
    parser.add_argument("--num_views", type=positive_int, default=defaults.num_views, help="cameras on the ring")
    parser.add_argument("--num_points", type=positive_int, default=defaults.num_points, help="surface points")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="random seed of the point cloud")
    args = parser.parse_args(argv)

    def work() -> None:
        spec = DemoSceneSpec(width=args.width, height=args.height, num_views=args.num_views,
                             num_points=args.num_points, seed=args.seed)
        out = make_demo_scene(args.output_dir, spec)
        print(f"demo scene written to {out}")

    return run_tool(parser.prog, work, args.debug)

