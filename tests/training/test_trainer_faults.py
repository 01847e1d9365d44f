"""`gaussian_point_train.py` on bad input and after crashes, run as a user runs it (a subprocess).

Every refused run exits 1 with one error line naming the bad file or key, prints no traceback and
leaves the output folder (and the log folder inside it) exactly as it was: absent stays absent.
A tiny demo scene (64 x 64 px, 7 train + 1 val views, 500 points) and 2-step runs keep it fast.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from conftest import REPO_ROOT
from test_trainer import demo_config

from taichi_3dgs.data.cameras import read_cameras_json, write_cameras_json
from taichi_3dgs.data.demo_scene import DemoSceneSpec, make_demo_scene
from taichi_3dgs.data.point_cloud import PointCloud, write_point_cloud
from taichi_3dgs.training.checkpoint import latest_checkpoint
from taichi_3dgs.training.config import config_to_yaml
from taichi_3dgs.training.run_folder import LOCK_NAME, RunLock

PROG = "gaussian_point_train.py"
TINY = DemoSceneSpec(width=64, height=64, num_views=8, num_points=500)


@pytest.fixture(scope="module")
def scene(tmp_path_factory) -> Path:
    return make_demo_scene(tmp_path_factory.mktemp("tiny_scene"), TINY)


def write_config(folder: Path, scene: Path, out: Path, **keys) -> Path:
    """A YAML config training `scene` into `out` for 2 steps (logs in out/logs), keys overridden."""
    settings = {"num-iterations": 2, "val-interval": 2, "checkpoint-interval": 1, **keys}
    path = folder / "run.yaml"
    path.write_text(config_to_yaml(demo_config(scene, out, **settings)))
    return path


def train_script(config: Path, *args: str, **popen) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO_ROOT / PROG), "--train_config", str(config), *args],
                          capture_output=True, text=True, timeout=600, cwd=config.parent, **popen)


def snapshot(folder: Path):
    """Every file and folder below `folder` (hidden ones too) with its content hash; None if absent."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): "folder" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*"))}


def assert_refused(result: subprocess.CompletedProcess, *named: str) -> str:
    """The run exited 1 with one error line naming each of `named`, and no traceback; the line."""
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"{PROG}: error: ")]
    assert len(errors) == 1, result.stderr
    for text in named:
        assert text in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def finished_run(scene, tmp_path_factory) -> Path:
    """The output folder of a completed 2-step run (checkpoint of step 2, logs inside)."""
    folder = tmp_path_factory.mktemp("finished")
    result = train_script(write_config(folder, scene, folder / "out"))
    assert result.returncode == 0, result.stderr
    return folder / "out"


def resume_copy(finished_run: Path, tmp_path: Path) -> Path:
    """A copy of the finished run's folder to resume from (output-model-dir may move on resume)."""
    out = tmp_path / "out"
    shutil.copytree(finished_run, out)
    return out


# ---- bad input of a new run: nothing is created -------------------------------------------------

def test_missing_camera_json_is_refused_and_creates_no_folder(scene, tmp_path):
    missing = tmp_path / "no_such_train.json"
    result = train_script(write_config(tmp_path, scene, tmp_path / "out", **{"train-dataset-json-path": str(missing)}))
    assert_refused(result, str(missing))
    assert snapshot(tmp_path / "out") is None


def test_garbage_camera_json_is_refused_naming_the_file(scene, tmp_path):
    garbage = tmp_path / "val.json"
    garbage.write_text('[{"image_path": ')
    result = train_script(write_config(tmp_path, scene, tmp_path / "out", **{"val-dataset-json-path": str(garbage)}))
    assert_refused(result, str(garbage), "not valid JSON")
    assert snapshot(tmp_path / "out") is None


@pytest.mark.parametrize("xyz, problem", [(np.zeros((0, 3)), "has 0 point(s)"),
                                           (np.full((50, 3), 0.25), "all 50 points are identical")],
                         ids=["no points", "identical points"])
def test_degenerate_point_cloud_is_refused_naming_the_file(scene, tmp_path, xyz, problem):
    cloud = tmp_path / "points.parquet"
    write_point_cloud(cloud, PointCloud(xyz=xyz.astype(np.float32)))
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("a user's file")
    before = snapshot(out)
    result = train_script(write_config(tmp_path, scene, out, **{"pointcloud-parquet-path": str(cloud)}))
    assert_refused(result, str(cloud), problem)
    assert snapshot(out) == before


def test_broken_depth_map_of_a_training_view_is_refused_naming_json_record_and_file(scene, tmp_path):
    records = read_cameras_json(scene / "train.json")
    broken = tmp_path / "depth_8bit.png"
    Image.fromarray(np.zeros((TINY.height, TINY.width), np.uint8)).save(broken)
    records[3] = dataclasses.replace(records[3], depth_path=broken, depth_scale=1000.0)
    cameras = tmp_path / "train.json"
    write_cameras_json(cameras, records)
    result = train_script(write_config(tmp_path, scene, tmp_path / "out", **{
        "train-dataset-json-path": str(cameras), "depth-loss": True}))
    assert_refused(result, f"{cameras}: record 3: depth_path {broken}", "mode 'L'", "16-bit PNG")
    assert snapshot(tmp_path / "out") is None


def test_depth_loss_without_depth_maps_is_refused_naming_the_key(scene, tmp_path):
    cameras = tmp_path / "train.json"
    write_cameras_json(cameras, [dataclasses.replace(r, depth_path=None) for r in read_cameras_json(scene / "train.json")])
    result = train_script(write_config(tmp_path, scene, tmp_path / "out", **{
        "train-dataset-json-path": str(cameras), "depth-loss": True}))
    assert_refused(result, "key 'depth-loss' is true", str(cameras), "names a depth map")
    assert snapshot(tmp_path / "out") is None


def test_an_output_folder_holding_the_input_cameras_is_refused_before_they_are_overwritten(scene, tmp_path):
    """Issue 27 item 3: with pose-optimization the run rewrote the dataset's own train.json."""
    data = tmp_path / "data"
    shutil.copytree(scene, data)
    before = snapshot(data)
    config = write_config(tmp_path, data, data, **{"pose-optimization": True})
    assert_refused(train_script(config), "key 'output-model-dir'", "train.json", "train-dataset-json-path",
                   "would overwrite it")
    assert snapshot(data) == before


def _cameras_with_depth(scene: Path, folder: Path, depth, depth_type: str = "metric", only: int | None = None) -> Path:
    """train.json of `scene` whose records name .npy depth maps filled with `depth` (all of them,
    or only record `only`, the others keeping theirs), of `depth_type`."""
    records = read_cameras_json(scene / "train.json")
    for index, record in enumerate(records):
        if only is None or index == only:
            np.save(folder / f"depth_{index}.npy", np.full((record.height, record.width), depth, np.float32))
            records[index] = dataclasses.replace(record, depth_path=str(folder / f"depth_{index}.npy"),
                                                 depth_type=depth_type, depth_scale=None)
    write_cameras_json(folder / "train.json", records)
    return folder / "train.json"


@pytest.mark.parametrize("depth, depth_type, why", [(0.0, "metric", "holds no depth"),
                                                    (0.5, "inverse", "constant, so its scale and shift cannot be fitted")])
def test_depth_loss_whose_depth_maps_cannot_supervise_is_refused_naming_why(scene, tmp_path, depth, depth_type, why):
    """Issue 27 items 1, 2: all-zero maps, or constant relative maps, trained without a word."""
    cameras = _cameras_with_depth(scene, tmp_path, depth, depth_type)
    result = train_script(write_config(tmp_path, scene, tmp_path / "out", **{
        "train-dataset-json-path": str(cameras), "depth-loss": True}))
    assert_refused(result, "key 'depth-loss' is true", str(cameras), "can supervise", why, "and 6 more")
    assert snapshot(tmp_path / "out") is None


def test_a_depth_map_that_cannot_supervise_among_good_ones_is_a_warning_naming_it(scene, tmp_path):
    cameras = _cameras_with_depth(scene, tmp_path, 0.0, only=3)
    result = train_script(write_config(tmp_path, scene, tmp_path / "out", **{
        "train-dataset-json-path": str(cameras), "depth-loss": True}))
    assert result.returncode == 0, result.stderr
    name = Path(read_cameras_json(cameras)[3].image_path).name
    assert f"warning: 1 of the 7 training depth maps add no depth loss: the one of {name} holds no depth" \
        in result.stderr, result.stderr


def test_lpips_weights_that_are_not_a_weights_file_are_refused_naming_key_and_file(scene, tmp_path):
    weights = tmp_path / "alex.pth"
    weights.write_bytes(b"<html>a download page, not weights</html>")
    config = write_config(tmp_path, scene, tmp_path / "out",
                          logging={"progress-bar": False, "lpips-weights": str(weights)})
    assert_refused(train_script(config), "key 'logging.lpips-weights'", f"{weights}: not a torch state dict")
    assert snapshot(tmp_path / "out") is None


def test_output_folder_that_is_a_file_is_refused_before_reading_anything(scene, tmp_path):
    out = tmp_path / "out"
    out.write_text("a user's file")
    result = train_script(write_config(tmp_path, scene, out))
    assert_refused(result, "key 'output-model-dir'", str(out), "which is a file")
    assert out.read_text() == "a user's file"


def test_log_folder_below_a_file_is_refused(scene, tmp_path):
    (tmp_path / "logs").write_text("a user's file")
    log_dir = tmp_path / "logs" / "run"
    result = train_script(write_config(tmp_path, scene, tmp_path / "out", **{"summary-writer-log-dir": str(log_dir)}))
    assert_refused(result, "key 'summary-writer-log-dir'", str(log_dir), "cannot be created")
    assert snapshot(tmp_path / "out") is None


# ---- --resume with a checkpoint of another run: nothing changes ---------------------------------

def test_resume_with_another_strategy_names_both(scene, finished_run, tmp_path):
    out = resume_copy(finished_run, tmp_path)
    before = snapshot(out)
    result = train_script(write_config(tmp_path, scene, out, strategy="mcmc"), "--resume")
    checkpoint = latest_checkpoint(out)
    assert_refused(result, f"checkpoint {checkpoint} was written with", "strategy 'default'", "says 'mcmc'")
    assert snapshot(out) == before


def test_resume_with_other_cameras_names_the_camera_file(scene, finished_run, tmp_path):
    out = resume_copy(finished_run, tmp_path)
    fewer = tmp_path / "train_fewer.json"
    write_cameras_json(fewer, read_cameras_json(scene / "train.json")[:-1])
    before = snapshot(out)
    result = train_script(write_config(tmp_path, scene, out, **{"train-dataset-json-path": str(fewer)}), "--resume")
    assert_refused(result, "written with 7 train cameras", f"key 'train-dataset-json-path' ({fewer}) has 6")
    assert snapshot(out) == before


def resume_with_edited_checkpoint(scene: Path, finished_run: Path, tmp_path: Path, edit) -> tuple:
    """Resume a copy of the finished run after `edit(content)` changed its checkpoint's dict; check
    that the folder is left as it was. Returns (result, checkpoint path)."""
    out = resume_copy(finished_run, tmp_path)
    checkpoint = latest_checkpoint(out)
    content = torch.load(checkpoint, weights_only=False)
    edit(content)
    torch.save(content, checkpoint)
    before = snapshot(out)
    result = train_script(write_config(tmp_path, scene, out), "--resume")
    assert snapshot(out) == before
    return result, checkpoint


def test_resume_with_a_checkpoint_missing_a_key_names_file_and_key(scene, finished_run, tmp_path):
    result, checkpoint = resume_with_edited_checkpoint(scene, finished_run, tmp_path,
                                                       lambda content: content.pop("optimizer"))
    assert_refused(result, str(checkpoint), "no key 'optimizer'")


def test_resume_with_a_non_finite_checkpoint_is_refused_naming_it_before_anything_is_written(scene, finished_run,
                                                                                             tmp_path):
    """Issue 27 item 10: a NaN mean was found only after the run had written its outputs."""
    def poison(content):
        content["model"]["means"][5, 1] = float("nan")
    result, checkpoint = resume_with_edited_checkpoint(scene, finished_run, tmp_path, poison)
    assert_refused(result, str(checkpoint), "non-finite value in 'means' (row 5)")


def test_resume_after_the_dataset_folder_moved(scene, tmp_path):
    """Issue 27 item 11: the point cloud's path was compared by its text; the cameras are compared
    by content, and the point cloud is not read on resume."""
    first, moved = tmp_path / "data", tmp_path / "moved"
    shutil.copytree(scene, first)
    assert train_script(write_config(tmp_path, first, tmp_path / "out")).returncode == 0
    first.rename(moved)
    result = train_script(write_config(tmp_path, moved, tmp_path / "out", **{"num-iterations": 3}), "--resume")
    assert result.returncode == 0, result.stderr
    assert latest_checkpoint(tmp_path / "out").name == "checkpoint_0000003.pt"


def test_resume_with_a_garbage_checkpoint_names_the_file(scene, finished_run, tmp_path):
    out = resume_copy(finished_run, tmp_path)
    garbage = out / "checkpoints" / "checkpoint_0000009.pt"  # the newest step: the one resumed
    garbage.write_bytes(b"\x00 not a checkpoint")
    before = snapshot(out)
    result = train_script(write_config(tmp_path, scene, out), "--resume")
    assert_refused(result, str(garbage), "cannot read checkpoint")
    assert snapshot(out) == before


def test_resume_with_an_older_format_says_to_start_a_new_run(scene, finished_run, tmp_path):
    def format_1(content):
        content["format"] = "taichi_3dgs.checkpoint/1"
        del content["cameras"]

    result, checkpoint = resume_with_edited_checkpoint(scene, finished_run, tmp_path, format_1)
    assert_refused(result, str(checkpoint), "written by an older taichi_3dgs", "start a new run")


# ---- one run per folder, and recovery after a crash ---------------------------------------------

def test_folder_in_use_by_a_live_run_is_refused_naming_its_pid(scene, finished_run, tmp_path):
    out = resume_copy(finished_run, tmp_path)
    with RunLock(out):  # this test's process is the live run
        before = snapshot(out)
        result = train_script(write_config(tmp_path, scene, out), "--resume")
        assert_refused(result, f"{out} is in use by another training run, pid {os.getpid()}")
        assert snapshot(out) == before


def test_resume_after_kill_9_takes_the_stale_lock_and_removes_stale_temporaries(scene, tmp_path):
    out = tmp_path / "out"
    config = write_config(tmp_path, scene, out, **{"num-iterations": 100000, "val-interval": 100000})
    run = subprocess.Popen([sys.executable, str(REPO_ROOT / PROG), "--train_config", str(config)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        while latest_checkpoint(out) is None:
            assert run.poll() is None, run.stderr.read()
            time.sleep(0.2)
    finally:
        run.kill()  # SIGKILL: no finally block, no atexit in the run
        run.communicate()
    assert run.returncode == -signal.SIGKILL
    assert json.loads((out / LOCK_NAME).read_text())["pid"] == run.pid  # left behind by the killed run
    planted = [out / ".final_scene.parquet.a1b2c3d4.tmp", out / "checkpoints" / ".checkpoint_0000001.pt.zz99yy88.tmp"]
    for path in planted:
        path.write_bytes(b"half-written")
    step = int(re.search(r"checkpoint_(\d+)", latest_checkpoint(out).name).group(1))

    result = train_script(config, "--resume", "--num-iterations", str(step + 2))

    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"taking over the lock of training run pid {run.pid}" in result.stderr
    removed = [line for line in result.stdout.splitlines() if "temporary file(s) of an interrupted write" in line]
    assert len(removed) == 1 and all(str(p.relative_to(out)) in removed[0] for p in planted), result.stdout
    assert not list(out.rglob("*.tmp"))
    assert not (out / LOCK_NAME).exists()
    assert json.loads((out / "metrics.json").read_text())["step"] == step + 2
    assert (out / "final_scene.parquet").exists()
