"""Export a trained scene as an official 3DGS PLY file, or as a .splat file for web splat viewers.

A scene of the original Taichi project (sigmoid colour) is converted to the official linear
colour model by a least-squares SH fit; the fit's mean colour error is printed.

    python parquet_to_ply.py --scene scene.parquet --output point_cloud.ply
    python parquet_to_ply.py --scene scene.parquet --output scene.splat

PLY: the 62 official properties (docs/FORMATS.md), readable by the graphdeco code and every splat
viewer. .splat: the antimatter15 layout (32 bytes per Gaussian, base colour only, quantised).
"""
from __future__ import annotations

from taichi_3dgs.cli import ToolParser, run_tool


def main(argv: list[str] | None = None, prog: str = "parquet_to_ply.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = ToolParser(prog, __doc__)
    parser.add_argument("--scene", required=True, deprecated=("--parquet_path",),
                        help="trained scene to read (.parquet or .ply)")
    parser.add_argument("--output", required=True, deprecated=("--ply_path",),
                        help="file to write: .ply (official 3DGS) or .splat (antimatter15)")
    args = parser.parse_args(argv)

    def work() -> None:
        from taichi_3dgs.scene.io import export_scene

        fit_error = export_scene(args.scene, args.output)
        if fit_error is not None:
            print(f"sigmoid colour scene converted to linear SH colour: mean absolute colour error "
                  f"{fit_error:.5f} (colour range 0..1)")
        print(f"wrote {args.output}")

    return run_tool(parser.prog, work, args.debug)

