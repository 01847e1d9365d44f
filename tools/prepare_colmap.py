#!/usr/bin/env python3
"""Prepare a COLMAP dataset for training: train.json, val.json, point_cloud.parquet, train_config.yaml.

    python tools/prepare_colmap.py --base_path ../shared/datasets/colmap_desk --output_dir data/desk
    python tools/prepare_colmap.py --base_path scene/sparse/0 --image_path scene/images --output_dir data/scene

Distorted cameras (SIMPLE_RADIAL, OPENCV, ...) are undistorted into <output_dir>/images.
"""
from __future__ import annotations

import argparse
import sys

from taichi_3dgs.data.cli import positive_int, run_converter
from taichi_3dgs.data.colmap import DEFAULT_VAL_EVERY, convert_colmap


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base_path", required=True,
                        help="COLMAP sparse model folder (cameras/images/points3D .bin or .txt), or a dataset "
                             "root holding images/ and sparse/0/")
    parser.add_argument("--image_path", help="images folder (default: <base_path>/images for a dataset root)")
    parser.add_argument("--output_dir", required=True, help="folder to write (created if needed)")
    parser.add_argument("--test_image_list_path",
                        help="text file of validation image names, one per line (overrides --val_every)")
    split = parser.add_mutually_exclusive_group()
    split.add_argument("--val_every", type=int, default=DEFAULT_VAL_EVERY,
                       help="every N-th image (sorted by name, index %% N == 0) goes to validation (default 8)")
    split.add_argument("--no_val", action="store_true", help="no validation images (val.json is empty)")
    parser.add_argument("--image_downscale_factor", type=positive_int, default=1,
                        help="image downscale factor written into train_config.yaml (default 1)")
    args = parser.parse_args(argv)
    return run_converter("prepare_colmap", convert_colmap, base_path=args.base_path, output_dir=args.output_dir,
                         image_path=args.image_path, test_image_list_path=args.test_image_list_path,
                         val_every=None if args.no_val else args.val_every,
                         image_downscale_factor=args.image_downscale_factor)


if __name__ == "__main__":
    sys.exit(main())
