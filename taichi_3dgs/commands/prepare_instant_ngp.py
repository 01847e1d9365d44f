"""Prepare an Instant-NGP dataset for training: train.json, val.json, point_cloud.parquet, train_config.yaml.

    python tools/prepare_InstantNGP_with_mesh.py --transforms_train ../shared/datasets/ngp_fox/transforms.json \\
        --output_dir data/ngp_fox

Frames whose image is missing are skipped; distorted images (k1, k2, p1, p2) are undistorted into
<output_dir>/images. Initial points: sampled on --mesh_path when given, else random points in
the cameras' common view volume.
"""
from __future__ import annotations

import argparse

from taichi_3dgs.cli import ToolParser, positive_int
from taichi_3dgs.data.cli import add_val_split_arguments, run_converter
from taichi_3dgs.data.converter_options import DEFAULT_MESH_SAMPLE_POINTS, DEFAULT_RANDOM_POINTS, DEFAULT_VAL_EVERY


class _ValSample(argparse.Action):
    """The deprecated `--val_sample N` (0 = no validation) as `--val_every N` / `--no_val`."""

    def __call__(self, parser, namespace, value, option_string=None):  # noqa: ANN001 (argparse API)
        if value < 0:
            parser.error(f"{option_string}: expected an integer >= 0, got {value}")
        namespace.val_every, namespace.no_val = (value or None), value == 0


def main(argv: list[str] | None = None, prog: str = "prepare_InstantNGP_with_mesh.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = ToolParser(prog, __doc__)
    parser.add_argument("--transforms_train", required=True, help="transforms JSON of the training frames")
    parser.add_argument("--transforms_test",
                        help="transforms JSON of the validation frames (instead of --val_every / --no_val)")
    parser.add_argument("--mesh_path", help="mesh in the transforms' world frame to sample initial points on")
    parser.add_argument("--num_points", type=positive_int, deprecated=("--mesh_sample_points",),
                        help=f"number of initial points (default: {DEFAULT_MESH_SAMPLE_POINTS} on --mesh_path, "
                             f"{DEFAULT_RANDOM_POINTS} random ones without)")
    add_val_split_arguments(parser, f"every {DEFAULT_VAL_EVERY}th frame in file order")
    parser.add_argument("--val_sample", type=int, action=_ValSample, help=argparse.SUPPRESS)
    parser.deprecate("--val_sample", "--val_every N (or --no_val for 0)")
    parser.add_argument("--image_path_prefix",
                        help="folder the frames' file_path values are relative to (default: the JSON's folder)")
    parser.add_argument("--output_dir", required=True, deprecated=("--output_path",),
                        help="folder to write (created if needed)")
    parser.add_argument("--image_downscale_factor", type=positive_int, default=1,
                        help="image downscale factor written into train_config.yaml")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the point sampling")
    args = parser.parse_args(argv)
    if args.transforms_test and (args.val_every or args.no_val):
        parser.error("--transforms_test chooses the validation frames; drop --val_every / --no_val / --val_sample")
    from taichi_3dgs.data.instant_ngp import convert_instant_ngp

    return run_converter(parser.prog, args, convert_instant_ngp,
                         transforms_train=args.transforms_train, output_dir=args.output_dir,
                         transforms_test=args.transforms_test, mesh_path=args.mesh_path,
                         mesh_sample_points=args.num_points,
                         val_every=None if args.no_val else (args.val_every or DEFAULT_VAL_EVERY),
                         image_path_prefix=args.image_path_prefix,
                         image_downscale_factor=args.image_downscale_factor, seed=args.seed)

