#!/usr/bin/env python3
"""Prepare an Instant-NGP dataset for training: train.json, val.json, point_cloud.parquet, train_config.yaml.

    python tools/prepare_InstantNGP_with_mesh.py --transforms_train ../shared/datasets/ngp_fox/transforms.json \
        --output_path data/fox

Frames whose image is missing are skipped; distorted images (k1, k2, p1, p2) are undistorted into
<output_path>/images. Initial points: sampled on --mesh_path when given, else random points in
the cameras' common view volume.
"""
from __future__ import annotations

import argparse
import sys

from taichi_3dgs.data.cli import positive_int, run_converter
from taichi_3dgs.data.instant_ngp import (
    DEFAULT_MESH_SAMPLE_POINTS, DEFAULT_RANDOM_POINTS, DEFAULT_VAL_SAMPLE, convert_instant_ngp,
)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--transforms_train", required=True, help="transforms JSON of the training frames")
    parser.add_argument("--transforms_test", help="transforms JSON of the validation frames (default: every "
                                                  "--val_sample-th training frame)")
    parser.add_argument("--mesh_path", help="mesh in the transforms' world frame to sample initial points on")
    parser.add_argument("--mesh_sample_points", type=positive_int,
                        help=f"number of initial points (default {DEFAULT_MESH_SAMPLE_POINTS} on --mesh_path, "
                             f"{DEFAULT_RANDOM_POINTS} random ones without)")
    parser.add_argument("--val_sample", type=int, default=DEFAULT_VAL_SAMPLE,
                        help="without --transforms_test, every N-th frame goes to validation; 0 for none (default 8)")
    parser.add_argument("--image_path_prefix",
                        help="folder the frames' file_path values are relative to (default: the JSON's folder)")
    parser.add_argument("--output_path", required=True, help="folder to write (created if needed)")
    parser.add_argument("--image_downscale_factor", type=positive_int, default=1,
                        help="image downscale factor written into train_config.yaml (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the point sampling")
    args = parser.parse_args(argv)
    return run_converter("prepare_InstantNGP_with_mesh", convert_instant_ngp,
                         transforms_train=args.transforms_train, output_path=args.output_path,
                         transforms_test=args.transforms_test, mesh_path=args.mesh_path,
                         mesh_sample_points=args.mesh_sample_points, val_sample=args.val_sample,
                         image_path_prefix=args.image_path_prefix,
                         image_downscale_factor=args.image_downscale_factor, seed=args.seed)


if __name__ == "__main__":
    sys.exit(main())
