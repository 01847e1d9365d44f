"""Prepare a BlenderNeRF / NeRF-synthetic scene for training: train.json, val.json, point_cloud.parquet,
train_config.yaml (with a white background for the RGBA images).

    python tools/prepare_blender_nerf.py --scene_path ../shared/datasets/blender_chair --output_dir data/blender_chair

The test split becomes val.json (the val split only when there is no test split).
"""
from __future__ import annotations

from taichi_3dgs.cli import ToolParser, positive_int
from taichi_3dgs.data.cli import add_val_split_arguments, run_converter
from taichi_3dgs.data.converter_options import DEFAULT_BLENDER_POINTS


def main(argv: list[str] | None = None, prog: str = "prepare_blender_nerf.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = ToolParser(prog, __doc__)
    parser.add_argument("--scene_path", required=True,
                        help="folder holding transforms_train.json (and transforms_test.json / transforms_val.json)")
    parser.add_argument("--output_dir", required=True, help="folder to write (created if needed)")
    parser.add_argument("--num_points", type=positive_int, default=DEFAULT_BLENDER_POINTS,
                        help="random initial points in the cameras' common view volume")
    add_val_split_arguments(parser, "the test split (transforms_test.json, else transforms_val.json)")
    parser.add_argument("--image_downscale_factor", type=positive_int, default=1,
                        help="image downscale factor written into train_config.yaml")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the point sampling")
    args = parser.parse_args(argv)
    from taichi_3dgs.data.blender import convert_blender_nerf

    return run_converter(parser.prog, args, convert_blender_nerf, scene_dir=args.scene_path,
                         output_dir=args.output_dir, num_points=args.num_points, val_every=args.val_every,
                         no_val=args.no_val, image_downscale_factor=args.image_downscale_factor, seed=args.seed)

