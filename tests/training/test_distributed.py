"""Data-parallel training with torchrun on the CPU (gloo, localhost): 2 processes, the real COLMAP
table capture at 1/8 resolution (test_batch.py's scene), each process on one Taichi thread.

The launcher is torch's own (`python -m torch.distributed.run`, i.e. torchrun), running the real
`gaussian_point_train.py` as a user would.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT
from test_batch import table_config, table_scene  # noqa: F401 (table_scene is a fixture)

from taichi_3dgs.data.cameras import read_cameras_json
from taichi_3dgs.data.views import load_views
from taichi_3dgs.rasterizer import RasterizerConfig
from taichi_3dgs.scene.model import load_initial_model
from taichi_3dgs.scene.parquet import read_scene_parquet
from taichi_3dgs.training.checkpoint import latest_checkpoint
from taichi_3dgs.training.config import ConfigError, config_to_yaml
from taichi_3dgs.training.dataset import scene_extent
from taichi_3dgs.training.distributed import World
from taichi_3dgs.training.evaluation import evaluate
from taichi_3dgs.training.trainer import train

PROG = "gaussian_point_train.py"
# A global batch of 2 over 48 images: 24 steps, densifying at steps 8 and 16 (3,036 -> about 6,500
# Gaussians; val PSNR 9.8 -> 17 dB), no opacity reset (a reset leaves this short run transparent,
# its val PSNR that of the background alone).
RUN = {
    "batch-size": 2, "num-iterations": 48, "val-interval": 24, "checkpoint-interval": 48,
    "random-background": False, "increase-color-max-sh-band-interval": 16,
    "logging": {"progress-bar": False, "log-loss-interval": 8},
    "adaptive-controller-config": {"num-iterations-warm-up": 8, "num-iterations-densify": 16,
                                   "densify-until-iteration": 42, "num-iterations-reset-alpha": 3000},
}
# Limits for a run that hangs instead of failing; a healthy run takes a fraction of them.
HANG_SECONDS = 600


def write_run_config(folder: Path, scene: Path, **keys) -> Path:
    """RUN on the table scene as a YAML file in `folder`, outputs in folder/out (logs inside)."""
    path = folder / "run.yaml"
    path.write_text(config_to_yaml(table_config(scene, folder / "out", **{**RUN, **keys})))
    return path


def torchrun(config: Path, *args: str, wait: bool = True):
    """`torchrun --standalone --nproc_per_node 2 gaussian_point_train.py --train_config config ...` on
    the CPU, one Taichi and one torch thread per process; the CompletedProcess (or the Popen)."""
    env = {**os.environ, "TAICHI_3DGS_ARCH": "cpu", "OMP_NUM_THREADS": "1", "TI_CPU_MAX_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               str(REPO_ROOT / PROG), "--train_config", str(config), *args]
    if not wait:
        return subprocess.Popen(command, env=env, cwd=config.parent, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return subprocess.run(command, env=env, cwd=config.parent, text=True, capture_output=True, timeout=HANG_SECONDS)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{PROG} [rank ") and ": error: " in line]


@pytest.fixture(scope="module")
def single_process_run(table_scene, tmp_path_factory) -> Path:  # noqa: F811
    """The output folder of RUN trained in this process (one process, the same global batch)."""
    out = tmp_path_factory.mktemp("single") / "out"
    train(table_config(table_scene, out, **RUN))
    return out


def test_two_processes_stopped_by_ctrl_c_and_resumed_equal_one_process(table_scene, single_process_run,
                                                                         tmp_path):  # noqa: F811
    config = write_run_config(tmp_path, table_scene, **{"checkpoint-interval": 2})
    out = tmp_path / "out"
    # Ctrl-C reaches torchrun, which passes it to both processes: they stop after the same step,
    # rank 0 saves a checkpoint.
    run = torchrun(config, wait=False)
    deadline = time.monotonic() + HANG_SECONDS
    while latest_checkpoint(out) is None and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=HANG_SECONDS)
    assert run.returncode != 0, stdout + stderr
    stopped = [line for line in stdout.splitlines() if line.startswith("stopped at step ")]
    assert len(stopped) == 1, stdout + stderr  # printed by rank 0 only
    stop_step = int(stopped[0].split()[3].rstrip(";"))
    assert 1 <= stop_step < 24
    assert latest_checkpoint(out).name == f"checkpoint_{stop_step:07d}.pt"
    assert not (out / ".lock").exists()

    resumed = torchrun(config, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"resuming from {latest_checkpoint(out).parent}" in resumed.stdout

    # Only rank 0 wrote: one TensorBoard event file per launch, one line per evaluation.
    assert len(list((out / "logs").glob("events.out.tfevents.*"))) == 2
    assert resumed.stdout.count("step 24: val PSNR") == 1

    extent = scene_extent(read_cameras_json(table_scene / "train.json"))
    two, one = read_scene_parquet(out / "final_scene.parquet"), read_scene_parquet(single_process_run / "final_scene.parquet")
    initial = load_initial_model(table_scene / "point_cloud.parquet")
    assert two.num_gaussians == one.num_gaussians != initial.num_gaussians  # densification ran
    assert float((torch.as_tensor(two.means) - torch.as_tensor(one.means)).abs().max()) < 1e-4 * extent
    metrics_two = json.loads((out / "metrics.json").read_text())["val"]
    metrics_one = json.loads((single_process_run / "metrics.json").read_text())["val"]
    assert metrics_one["psnr"] > 15.0  # a trained scene, not the bare background
    assert abs(metrics_two["psnr"] - metrics_one["psnr"]) < 0.05

    # The sharded validation (rank r renders val views r, r + 2, ...) gathered in view order
    # equals one process evaluating every view of the same scene.
    val_views = load_views(read_cameras_json(table_scene / "val.json"), 8, 1600, "cpu")
    reference = evaluate(load_initial_model(out / "final_scene.parquet"), val_views, RasterizerConfig(), torch.zeros(3))
    assert [v["image"] for v in metrics_two["per_view"]] == [s.image for s in reference.per_view]
    for logged, expected in zip(metrics_two["per_view"], reference.per_view):
        assert logged["psnr"] == pytest.approx(expected.psnr, abs=1e-4)


def test_a_rank_failing_on_its_input_ends_every_rank_with_its_error(table_scene, tmp_path):  # noqa: F811
    """Rank 1 alone reads val view 1 (the val views are sharded); its image is damaged. Rank 0 waits
    for it before writing anything: torchrun stops it, and the output folder is never created."""
    records = json.loads((table_scene / "val.json").read_text())
    for record in records:  # the file moves: its relative image paths would not
        record["image_path"] = str(table_scene / record["image_path"])
    damaged = tmp_path / "damaged.jpeg"
    damaged.write_bytes(b"\xff\xd8 not a JPEG any more")
    records[1]["image_path"] = str(damaged)
    (tmp_path / "val.json").write_text(json.dumps(records))
    result = torchrun(write_run_config(tmp_path, table_scene, **{"val-dataset-json-path": str(tmp_path / "val.json")}))
    assert result.returncode != 0
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    assert errors[0].startswith(f"{PROG} [rank 1/2]: error: {tmp_path / 'val.json'}: record 1: ")
    assert str(damaged) in errors[0]
    assert not (tmp_path / "out").exists()


def test_rank_0_failing_during_training_ends_the_waiting_rank(table_scene, tmp_path):  # noqa: F811
    """Rank 0 cannot write the checkpoint of step 4 (a folder holds its name) while rank 1 is
    already waiting in the next step's gradient reduction: the job ends with rank 0's error."""
    config = write_run_config(tmp_path, table_scene, **{"checkpoint-interval": 8})
    blocker = tmp_path / "out" / "checkpoints" / "checkpoint_0000004.pt"
    blocker.mkdir(parents=True)
    (blocker / "keep").touch()
    result = torchrun(config)
    assert result.returncode != 0
    errors = error_lines(result.stderr)
    assert errors and errors[0].startswith(f"{PROG} [rank 0/2]: error: "), result.stderr
    assert "checkpoint_0000004.pt: is a directory" in errors[0]
    assert not (tmp_path / "out" / "final_scene.parquet").exists()
    assert not (tmp_path / "out" / ".lock").exists()  # rank 0 left through its error, releasing the lock


def test_global_batch_must_split_evenly_over_the_processes(table_scene, tmp_path):  # noqa: F811
    """Checked before any collective, so a World of 2 without a process group is enough here."""
    config = table_config(table_scene, tmp_path / "out", **{"batch-size": 3})
    with pytest.raises(ConfigError, match=r"'batch-size' is 3, the global batch, which 2 processes cannot share "
                                          r"evenly; use a multiple of 2"):
        train(config, world=World(rank=0, size=2))
    assert not (tmp_path / "out").exists()


def test_each_process_takes_every_size_th_item_from_its_rank():
    items = list(range(7))
    assert [World(rank, 3).share(items) for rank in range(3)] == [[0, 3, 6], [1, 4], [2, 5]]
    assert World().share(items) == items


def _union_in_process(rank: int, store: str, masks: list[list[bool]], results) -> None:
    """One of the processes of the union test: join a gloo group, OR its mask with the others'."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=len(masks))
    union = World(rank, len(masks)).union(torch.tensor(masks[rank]))
    results[rank] = (union.dtype, union.tolist())
    dist.destroy_process_group()


def test_union_is_the_elementwise_or_of_every_process_mask(tmp_path):
    """Sparse Adam's visibility: a Gaussian seen by any process is stepped in all of them."""
    import torch.multiprocessing as mp

    masks = [[True, False, False, True], [False, False, True, True]]
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_union_in_process, args=(str(tmp_path / "store"), masks, results), nprocs=2)
        assert dict(results) == {rank: (torch.bool, [True, False, True, True]) for rank in range(2)}
    assert World().union(torch.tensor(masks[0])).tolist() == masks[0]
