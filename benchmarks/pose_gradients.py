"""What pulls on each training camera's pose during a run, the corrections held at zero (not a test).

Trains as `gaussian_point_train.py` with the given arguments, pose optimisation on at a learning
rate of 1e-30: the corrections stay zero (the run is the run without pose optimisation) while every
step's gradient of the loss with respect to the visited camera's correction is recorded
(`training/pose_corrections.py`: translation t / scene extent, rotation vector w in radians, camera
frame). Printed, for the cameras whose pose equals `--reference`'s ("good") and for the others
("off"):

- per quarter of the run, the median norm of the translation and of the rotation gradients;
- from `--from_step` on, per camera, the mean norm of its gradients (all six coordinates), its 10th,
  50th and 90th percentile over the cameras, and the consistency |mean of its gradients| / mean of
  their norms (1: the same direction at every visit; about 1 / sqrt(visits) for zero-mean noise),
  median over the cameras.

    python benchmarks/pose_gradients.py --reference data/colmap_desk/train.json -- \\
        --train_config official.yaml --train-dataset-json-path data/desk_poses/train.json \\
        --output-model-dir /tmp/grad --summary-writer-log-dir /tmp/grad/logs
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from taichi_3dgs import train_cli  # noqa: E402
from taichi_3dgs.data.cameras import read_cameras_json  # noqa: E402
from taichi_3dgs.data.pose_alignment import pose_errors  # noqa: E402
from taichi_3dgs.training import pose_corrections  # noqa: E402
from taichi_3dgs.training.config import apply_overrides, load_train_config  # noqa: E402


def record_gradients(train_arguments: list[str]) -> list[tuple[int, int, np.ndarray]]:
    """Run the trainer with `train_arguments` plus pose optimisation at rate 1e-30; returns
    (step, camera index, float64 [6] gradient) for every camera with a gradient at every step."""
    recorded: list[tuple[int, int, np.ndarray]] = []
    steps = [0]
    adam_step = pose_corrections.PoseCorrections.step

    def step(self: pose_corrections.PoseCorrections) -> None:
        steps[0] += 1  # called once per training step
        gradient = self.corrections.grad
        if gradient is not None:
            for camera in (gradient.abs().sum(dim=1) > 0).nonzero().flatten().tolist():
                recorded.append((steps[0], camera, gradient[camera].double().cpu().numpy()))
        adam_step(self)

    pose_corrections.PoseCorrections.step = step
    rate = ["--pose-optimization", "true", "--pose-optimization-config.learning-rate", "1e-30",
            "--pose-optimization-config.learning-rate-final", "1e-30"]
    if train_cli.main(train_arguments + rate):
        raise SystemExit("training failed")
    return recorded


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--reference", type=Path, required=True,
                        help="camera JSON with the true poses of the training cameras (same order)")
    parser.add_argument("--from_step", type=int, default=250, help="first step of the consistency figure")
    parser.add_argument("train_arguments", nargs=argparse.REMAINDER, help="-- then the trainer's arguments")
    args = parser.parse_args()
    train_arguments = args.train_arguments[1:] if args.train_arguments[:1] == ["--"] else args.train_arguments
    recorded = record_gradients(train_arguments)
    config_parser = argparse.ArgumentParser(add_help=False)
    config_parser.add_argument("--train_config", required=True)
    config_path, overrides = config_parser.parse_known_args(train_arguments)
    config = apply_overrides(load_train_config(config_path.train_config), overrides)
    rotation, _ = pose_errors(read_cameras_json(config.train_dataset_json_path), read_cameras_json(args.reference))
    steps = np.array([step for step, _, _ in recorded])
    cameras = np.array([camera for _, camera, _ in recorded])
    gradients = np.stack([gradient for _, _, gradient in recorded])
    translation, rotation_size = np.linalg.norm(gradients[:, :3], axis=1), np.linalg.norm(gradients[:, 3:], axis=1)
    size = np.linalg.norm(gradients, axis=1)
    for label, chosen in (("good", np.flatnonzero(rotation < 1e-6)), ("off", np.flatnonzero(rotation >= 1e-6))):
        if not len(chosen):
            continue
        rows = np.isin(cameras, chosen)
        quarters = []
        for quarter in range(4):
            within = rows & (steps > quarter * steps.max() / 4) & (steps <= (quarter + 1) * steps.max() / 4)
            quarters.append(f"{np.median(translation[within]):.3f} / {np.median(rotation_size[within]):.3f}")
        sizes, consistency = [], []
        for camera in chosen:
            mine = (cameras == camera) & (steps >= args.from_step)
            if mine.sum() > 1:
                sizes.append(size[mine].mean())
                consistency.append(np.linalg.norm(gradients[mine].mean(axis=0)) / sizes[-1])
        low, middle, high = np.percentile(sizes, [10, 50, 90])
        print(f"{label} ({len(chosen)} cameras): median |gradient| translation / rotation by quarter: "
              f"{', '.join(quarters)}; from step {args.from_step}: per camera mean |gradient| 10/50/90th "
              f"percentile {low:.3f} / {middle:.3f} / {high:.3f}, consistency median {np.median(consistency):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
