"""Prepare a COLMAP dataset for training: train.json, val.json, point_cloud.parquet, train_config.yaml.

    python tools/prepare_colmap.py --base_path ../shared/datasets/colmap_desk --output_dir data/colmap_desk
    python tools/prepare_colmap.py --base_path scene/sparse/0 --image_path scene/images --output_dir data/scene

Distorted cameras (SIMPLE_RADIAL, OPENCV, ...) are undistorted into <output_dir>/images.
"""
from __future__ import annotations

from taichi_3dgs.cli import ToolParser, positive_int
from taichi_3dgs.data.cli import add_val_split_arguments, run_converter
from taichi_3dgs.data.converter_options import DEFAULT_VAL_EVERY


def main(argv: list[str] | None = None, prog: str = "prepare_colmap.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input)."""
    parser = ToolParser(prog, __doc__)
    parser.add_argument("--base_path", required=True,
                        help="COLMAP sparse model folder (cameras/images/points3D .bin or .txt), or a dataset "
                             "root holding images/ and sparse/0/")
    parser.add_argument("--image_path", help="images folder (default: <base_path>/images for a dataset root)")
    parser.add_argument("--output_dir", required=True, help="folder to write (created if needed)")
    parser.add_argument("--test_image_list_path",
                        help="text file of validation image names, one per line (instead of --val_every)")
    add_val_split_arguments(parser, f"every {DEFAULT_VAL_EVERY}th image by name")
    parser.add_argument("--image_downscale_factor", type=positive_int, default=1,
                        help="image downscale factor written into train_config.yaml")
    args = parser.parse_args(argv)
    if args.test_image_list_path and (args.val_every or args.no_val):
        parser.error("--test_image_list_path chooses the validation images; drop --val_every / --no_val")
    from taichi_3dgs.data.colmap import convert_colmap

    return run_converter(parser.prog, args, convert_colmap, base_path=args.base_path, output_dir=args.output_dir,
                         image_path=args.image_path, test_image_list_path=args.test_image_list_path,
                         val_every=None if args.no_val else (args.val_every or DEFAULT_VAL_EVERY),
                         image_downscale_factor=args.image_downscale_factor)

