#!/usr/bin/env python3
"""Import an official 3DGS PLY file as a trained-scene parquet file (exact, linear colour).

    python ply_to_parquet.py --ply_path point_cloud.ply --parquet_path scene.parquet
"""
from __future__ import annotations

import argparse
import sys

from taichi_3dgs.scene.io import ply_to_parquet


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ply_path", required=True, help="official 3DGS PLY file to read")
    parser.add_argument("--parquet_path", required=True, help="trained-scene parquet file to write")
    args = parser.parse_args(argv)
    try:
        ply_to_parquet(args.ply_path, args.parquet_path)
    except (OSError, ValueError) as error:
        print(f"ply_to_parquet: error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.parquet_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
