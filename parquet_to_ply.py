#!/usr/bin/env python3
"""Export a trained-scene parquet file as an official 3DGS PLY file.

A scene of the original Taichi project (sigmoid colour) is converted to the official linear
colour model by a least-squares SH fit; the fit's mean colour error is printed.

    python parquet_to_ply.py --parquet_path scene.parquet --ply_path point_cloud.ply
"""
from __future__ import annotations

import argparse
import sys

from taichi_3dgs.scene.io import parquet_to_ply


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parquet_path", required=True, help="trained-scene parquet file to read")
    parser.add_argument("--ply_path", required=True, help="PLY file to write")
    args = parser.parse_args(argv)
    try:
        fit_error = parquet_to_ply(args.parquet_path, args.ply_path)
    except (OSError, ValueError) as error:
        print(f"parquet_to_ply: error: {error}", file=sys.stderr)
        return 1
    if fit_error is not None:
        print(f"sigmoid colour scene converted to linear SH colour: mean absolute colour error "
              f"{fit_error:.5f} (colour range 0..1)")
    print(f"wrote {args.ply_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
