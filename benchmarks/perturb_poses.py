"""Perturb the poses of a prepared camera JSON on purpose, or measure pose errors (not a test).

The pose-optimisation benchmark of BENCHMARKS.md: every camera of `--cameras` turns by exactly
`--rotation_degrees` about a random axis through its centre and its centre moves by exactly
`--translation_fraction` x the scene extent (the trainer's `scene_extent` of these cameras) in a
random direction; directions from numpy's generator seeded with `--seed`. The perturbation
composes in the camera frame, T' = T @ [[R, t], [0, 1]], as pose optimisation's correction does.

    python benchmarks/perturb_poses.py --cameras data/colmap_desk/train.json \\
        --output data/colmap_desk_perturbed/train.json
    python benchmarks/perturb_poses.py --cameras output/desk_pose/train.json \\
        --reference data/colmap_desk/train.json      # median rotation / translation error

With `--reference` nothing is written: the script prints the median and mean rotation error
(degrees) and camera-centre error (scene units, and % of the reference's scene extent) of
`--cameras` against the records of `--reference` (same images, same order), as they are and after
aligning `--cameras` to the reference by the similarity transform that best maps them onto the
reference (`taichi_3dgs.data.pose_alignment.align_to_reference`).
Cameras and scene refined together are defined only up to such a transform (moving, turning or
scaling both together changes no image), so the aligned errors are what pose optimisation can be
asked to recover; the unaligned ones add the drift of the whole reconstruction.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from taichi_3dgs.data.cameras import CameraRecord, read_cameras_json, write_cameras_json  # noqa: E402
from taichi_3dgs.data.pose_alignment import align_to_reference, pose_errors  # noqa: E402
from taichi_3dgs.training.dataset import scene_extent  # noqa: E402


def random_unit_vectors(rng: np.random.Generator, count: int) -> np.ndarray:
    """[count, 3] directions uniform on the sphere."""
    vectors = rng.normal(size=(count, 3))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def perturb_poses(records: list[CameraRecord], rotation_degrees: float, translation: float,
                  seed: int) -> list[CameraRecord]:
    """Each record's camera-to-world T becomes T @ [[R, t], [0, 1]], |R| = rotation_degrees about a
    random axis, |t| = translation (scene units) in a random direction (camera frame)."""
    rng = np.random.default_rng(seed)
    axes = random_unit_vectors(rng, len(records))
    directions = random_unit_vectors(rng, len(records))
    perturbed = []
    for record, axis, direction in zip(records, axes, directions):
        delta = np.eye(4)
        delta[:3, :3] = Rotation.from_rotvec(np.radians(rotation_degrees) * axis).as_matrix()
        delta[:3, 3] = translation * direction
        perturbed.append(dataclasses.replace(record, T_pointcloud_camera=record.T_pointcloud_camera @ delta))
    return perturbed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--cameras", type=Path, required=True, help="camera JSON to perturb or to measure")
    parser.add_argument("--output", type=Path, help="perturbed camera JSON to write (must not exist)")
    parser.add_argument("--reference", type=Path, help="measure --cameras against this camera JSON instead")
    parser.add_argument("--rotation_degrees", type=float, default=1.0, help="rotation of every camera, degrees")
    parser.add_argument("--translation_fraction", type=float, default=0.01,
                        help="shift of every camera centre, as a fraction of the scene extent")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random axes and directions")
    args = parser.parse_args()
    records = read_cameras_json(args.cameras)
    if args.reference is not None:
        reference = read_cameras_json(args.reference)
        if [r.image_path.name for r in records] != [r.image_path.name for r in reference]:
            parser.error(f"{args.cameras} and {args.reference} do not list the same images in the same order")
        extent = scene_extent(reference)
        print(f"{len(records)} cameras, scene extent {extent:.4f}")
        for label, cameras in (("as given", records), ("aligned", align_to_reference(records, reference))):
            rotation, translation = pose_errors(cameras, reference)
            print(f"{label}: rotation error median {np.median(rotation):.4f} deg (mean {rotation.mean():.4f}), "
                  f"centre error median {np.median(translation):.5f} ({100 * np.median(translation) / extent:.3f} % "
                  f"of the extent; mean {translation.mean():.5f})")
        return 0
    if args.output is None:
        parser.error("give --output (a perturbed JSON to write) or --reference (to measure errors)")
    if args.output.exists():
        parser.error(f"{args.output} already exists; choose another --output")
    extent = scene_extent(records)
    perturbed = perturb_poses(records, args.rotation_degrees, args.translation_fraction * extent, args.seed)
    write_cameras_json(args.output, perturbed)
    print(f"wrote {args.output}: {len(perturbed)} cameras turned by {args.rotation_degrees:g} deg and moved by "
          f"{args.translation_fraction * extent:.5f} ({100 * args.translation_fraction:g} % of the extent {extent:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
