"""Import a scene file as a trained-scene parquet file (linear colour).

    python ply_to_parquet.py --scene point_cloud.ply --output scene.parquet

Reads an official 3DGS PLY exactly, and the web formats (.compressed.ply, .sog, .spz, .glb,
.splat) as decoded (docs/FORMATS.md says what each keeps).
"""
from __future__ import annotations

from taichi_3dgs.cli import ToolParser, run_tool


def main(argv: list[str] | None = None, prog: str = "ply_to_parquet.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = ToolParser(prog, __doc__)
    parser.add_argument("--scene", required=True, deprecated=("--ply_path",), 
                        help="scene file to read: .ply, .compressed.ply, .sog, .spz, .glb or .splat")
    parser.add_argument("--output", required=True, deprecated=("--parquet_path",),
                        help="trained-scene parquet file to write")
    args = parser.parse_args(argv)

    def work() -> None:
        from taichi_3dgs.scene.io import ply_to_parquet

        ply_to_parquet(args.scene, args.output)
        print(f"wrote {args.output}")

    return run_tool(parser.prog, work, args.debug)

