"""Check rough camera poses against their photos and replace those the photos contradict.

    python tools/refine_poses.py --cameras data/my_capture/train.json data/my_capture/val.json \\
        --output_dir data/my_capture_refined
    python gaussian_point_train.py --train_config data/my_capture/train_config.yaml \\
        --train-dataset-json-path data/my_capture_refined/train.json \\
        --val-dataset-json-path data/my_capture_refined/val.json

For poses from a phone's tracking, a robot or a rig (a degree off costs several dB). Structure from
motion (pycolmap) on the images; each given pose whose keypoints reproject within --max_error_px is
kept exactly, the others take the reconstruction's pose moved into the given frame
(taichi_3dgs/data/pose_refinement.py). Writes each camera JSON under its own name into --output_dir
and COLMAP's database and model into <output_dir>/colmap/; none of them may exist yet (inputs and
earlier outputs are never written over).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from taichi_3dgs.cli import EXIT_INTERRUPTED, ToolParser, positive_float, positive_int, run_tool


def main(argv: list[str] | None = None, prog: str = "refine_poses.py") -> int:
    """Parse the command line and run; the exit code (0 ok, 1 bad input, 130 Ctrl-C)."""
    parser = ToolParser(prog, __doc__)
    parser.add_argument("--cameras", nargs="+", required=True,
                        help="camera JSON files (train.json, val.json) whose poses are checked together")
    parser.add_argument("--output_dir", required=True,
                        help="folder for the checked camera JSON files and colmap/ (created; none of them may "
                             "exist there)")
    parser.add_argument("--max_error_px", type=positive_float, default=3.0,
                        help="keep a given pose whose keypoints reproject with a median error up to this "
                             "(pixels of the image scaled to --max_image_size, as features are extracted)")
    parser.add_argument("--max_image_size", type=positive_int, default=1600,
                        help="longest side in pixels used for feature extraction")
    parser.add_argument("--neighbours", type=positive_int, default=15,
                        help="cameras each image is matched with (the nearest by the given centres)")
    args = parser.parse_args(argv)
    inputs = [Path(path) for path in args.cameras]
    output_dir = Path(args.output_dir)
    outputs = [output_dir / path.name for path in inputs]
    if len({path.name for path in inputs}) < len(inputs):
        parser.error("--cameras files must have distinct names (each is written under its own name)")

    def work() -> None:
        from taichi_3dgs.data.cameras import read_cameras_json, write_cameras_json
        from taichi_3dgs.data.pose_refinement import refine_poses
        from taichi_3dgs.data.structure_from_motion import quiet_colmap

        for path in [*outputs, output_dir / "colmap"]:
            if path.exists():
                raise ValueError(f"{path} exists; choose another --output_dir (inputs and earlier "
                                 "outputs are never overwritten)")
        quiet_colmap()
        records = [read_cameras_json(path) for path in inputs]
        result = refine_poses([r for file in records for r in file], output_dir / "colmap",
                              max_error_px=args.max_error_px, max_image_size=args.max_image_size,
                              neighbours=args.neighbours)
        start = 0
        for path, output, file in zip(inputs, outputs, records):
            span = range(start, start + len(file))
            write_cameras_json(output, result.records[span.start:span.stop])
            replaced = [i for i in result.replaced if i in span]
            errors = result.errors_px[span.start:span.stop]
            print(f"{path}: {len(file)} cameras, {len(replaced)} replaced; the given poses reproject their "
                  f"keypoints with a median error of {_median(errors)} against each other (a pose is kept up to "
                  f"{args.max_error_px:g} px against the poses kept) -> {output}")
            start += len(file)
        for label, names in (("not registered (kept as given)", result.unregistered),
                             ("contradicted, but placed far away by the reconstruction (kept as given)",
                              result.disagreeing)):
            if names:
                print(f"{len(names)} images {label}: {', '.join(names)}")
        print(f"reconstruction: {result.num_points} points, in {output_dir / 'colmap'}")

    exit_code = run_tool(parser.prog, work, args.debug)
    if exit_code == EXIT_INTERRUPTED:
        # As prepare_images.py: a cancelled pycolmap call leaves threads whose destructors would abort.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)
    return exit_code


def _median(errors) -> str:
    import numpy as np

    finite = errors[np.isfinite(errors)]
    return f"{np.median(finite):.2f} px" if len(finite) else "unknown (no tracks)"
