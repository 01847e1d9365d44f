"""Benchmark training throughput: optimisation steps/s and images/s by batch size and process count
(not a test).

Trains a real capture (default: ../shared/datasets/colmap_table_txt, prepared by the COLMAP
converter into a temporary folder) with `gaussian_point_train.py` for --warmup + --steps
optimisation steps of B images each, for every B of --batch_sizes and every process count of
--processes (1: plain python; N > 1: `python -m torch.distributed.run --standalone
--nproc_per_node N`, i.e. torchrun, on one machine). No validation and no densification, so every
run trains the same initial Gaussians. Throughput comes from the wall times of the TensorBoard
scalars written after each step (rank 0), between the end of step --warmup and the last step, so
start-up and the first kernel compilations do not count.

    python benchmarks/training_throughput.py                                   # CPU or CUDA, as Taichi picks
    python benchmarks/training_throughput.py --batch_sizes 1 2 4 8 --processes 1 2 4 8   # several GPUs

Several processes on one machine's CPU share its cores (each gets cores / processes Taichi threads,
one torch thread): that measures the overhead of data parallelism, not a multi-GPU speed-up.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from taichi_3dgs.data.colmap import convert_colmap  # noqa: E402
from taichi_3dgs.training.config import config_to_yaml, load_train_config, parse_train_config  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
# ../shared/datasets beside the checkout, as tests/conftest.py finds it
DATASETS_DIR = Path(os.environ.get("TAICHI_3DGS_DATASETS", REPO_ROOT.parent / "shared" / "datasets"))
DEFAULT_DATA = DATASETS_DIR / "colmap_table_txt"


def run_config(scene: Path, out: Path, batch_size: int, steps: int, downscale: int) -> str:
    """YAML of a run of `steps` optimisation steps of `batch_size` images, logging every step,
    without validation or densification."""
    prepared = load_train_config(scene / "train_config.yaml")
    config = parse_train_config({
        "train-dataset-json-path": str(prepared.train_dataset_json_path),
        "pointcloud-parquet-path": str(prepared.pointcloud_parquet_path),
        "output-model-dir": str(out),
        "summary-writer-log-dir": str(out / "logs"),
        "image-downscale-factor": downscale,
        "batch-size": batch_size,
        "num-iterations": steps * batch_size,  # counts images
        "checkpoint-interval": 10 * steps * batch_size,
        "logging": {"progress-bar": False, "log-loss-interval": batch_size, "log-histograms": False},
        "adaptive-controller-config": {"densify-until-iteration": 1},  # no step is before it: no densification
    }, "benchmark", out)
    return config_to_yaml(config)


def steps_per_second(log_dir: Path, first_step: int) -> tuple[float, int]:
    """Steps/s between the end of `first_step` and the last step logged in `log_dir`; the number
    of Gaussians trained."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir))
    events.Reload()
    times = {e.step: e.wall_time for e in events.Scalars("train/loss")}
    last = max(times)
    count = int(events.Scalars("value/num_valid_points")[-1].value)
    return (last - first_step) / (times[last] - times[first_step]), count


def train(config: Path, processes: int) -> None:
    """Run gaussian_point_train.py on `config` in `processes` processes; raise on failure.

    Every process gets one torch thread (as torchrun gives each of several) and cores / processes
    Taichi threads (as taichi_3dgs.training.distributed gives each of several), unless the
    environment sets them: the runs use the same cores whatever their process count.
    """
    script = [str(REPO_ROOT / "gaussian_point_train.py"), "--train_config", str(config)]
    if processes == 1:
        command = [sys.executable, *script]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                   str(processes), *script]
    env = {"OMP_NUM_THREADS": "1", "TI_CPU_MAX_NUM_THREADS": str(max(1, (os.cpu_count() or 1) // processes)),
           **os.environ}
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="COLMAP dataset root (images/ + sparse/0/)")
    parser.add_argument("--image_downscale_factor", type=int, default=4)
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--steps", type=int, default=40, help="timed optimisation steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (kernel compilation)")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        scene = Path(tmp) / "scene"
        convert_colmap(args.data, scene, image_downscale_factor=args.image_downscale_factor)
        print(f"{args.data.name} at 1/{args.image_downscale_factor}, {args.warmup} + {args.steps} steps per run\n")
        print("| processes | batch | steps/s | images/s | Gaussians |")
        print("| --- | --- | --- | --- | --- |")
        for processes in args.processes:
            for batch in args.batch_sizes:
                if batch % processes:
                    continue  # the global batch must split evenly
                out = Path(tmp) / f"run_{processes}_{batch}"
                config = Path(tmp) / f"run_{processes}_{batch}.yaml"
                config.write_text(run_config(scene, out, batch, args.warmup + args.steps, args.image_downscale_factor))
                train(config, processes)
                rate, gaussians = steps_per_second(out / "logs", args.warmup)
                print(f"| {processes} | {batch} | {rate:.2f} | {rate * batch:.2f} | {gaussians:,} |", flush=True)


if __name__ == "__main__":
    main()
