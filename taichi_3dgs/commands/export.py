"""Export a trained scene as an official 3DGS PLY file or a compressed web format.

A scene of the original Taichi project (sigmoid colour) is converted to the official linear
colour model by a least-squares SH fit; the fit's mean colour error is printed. The format comes
from the output's suffix; the file's size and, for a quantised format, the error of reading it
back are printed.

    python parquet_to_ply.py --scene scene.parquet --output point_cloud.ply
    python parquet_to_ply.py --scene scene.parquet --output scene.spz

.ply: the 62 official properties (lossless; docs/FORMATS.md), readable by the graphdeco code and
every splat viewer. Quantised: .compressed.ply (PlayCanvas, SuperSplat), .sog (PlayCanvas),
.spz (Niantic), .glb (glTF 2.0 KHR_gaussian_splatting, float32), .splat (antimatter15, base
colour only). docs/FORMATS.md says what each keeps.
"""
from __future__ import annotations

from taichi_3dgs.cli import ToolParser, run_tool


def main(argv: list[str] | None = None, prog: str = "parquet_to_ply.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = ToolParser(prog, __doc__)
    parser.add_argument("--scene", required=True, deprecated=("--parquet_path",),
                        help="trained scene to read (.parquet, .ply or any format written here)")
    parser.add_argument("--output", required=True, deprecated=("--ply_path",),
                        help="file to write: .ply, .compressed.ply, .sog, .spz, .glb or .splat")
    args = parser.parse_args(argv)

    def work() -> None:
        from taichi_3dgs.scene.io import export_scene

        result = export_scene(args.scene, args.output)
        if result.fit_error is not None:
            print(f"sigmoid colour scene converted to linear SH colour: mean absolute colour error "
                  f"{result.fit_error:.5f} (colour range 0..1)")
        per_gaussian = result.num_bytes / max(result.num_gaussians, 1)
        print(f"wrote {args.output}: {result.num_bytes:,} bytes, {result.num_gaussians:,} "
              f"Gaussians ({per_gaussian:.1f} bytes per Gaussian)")
        if result.errors is None:
            print("lossless: the file holds the scene exactly")
        else:
            print("round trip (file read back against the scene), mean / max error:")
            for name, (mean, largest) in result.errors.items():
                print(f"  {name:28s} {mean:.3g} / {largest:.3g}")

    return run_tool(parser.prog, work, args.debug)
