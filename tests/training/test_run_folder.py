"""A run's output folder: the writability check and the one-run-per-folder lock."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from taichi_3dgs.training.config import ConfigError
from taichi_3dgs.training.run_folder import (
    LOCK_NAME, FolderInUseError, RunLock, check_output_folder, check_outputs_are_not_inputs,
)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def write_lock(folder: Path, **owner) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    path.write_text(json.dumps(owner) + "\n")
    return path


def test_a_new_folder_below_a_writable_one_passes_and_is_not_created(tmp_path):
    check_output_folder(tmp_path / "a" / "b", "output-model-dir", "run.yaml")
    assert list(tmp_path.iterdir()) == []


def test_a_file_in_place_of_the_folder_is_refused_naming_key_and_path(tmp_path):
    (tmp_path / "out").write_text("mine")
    with pytest.raises(ConfigError, match=r"run.yaml: key 'output-model-dir' is .*out, which is a file"):
        check_output_folder(tmp_path / "out", "output-model-dir", "run.yaml")


def test_a_file_among_the_parents_is_refused(tmp_path):
    (tmp_path / "notes").write_text("mine")
    with pytest.raises(ConfigError, match=r"key 'summary-writer-log-dir' .* cannot be created: .*notes is a file"):
        check_output_folder(tmp_path / "notes" / "logs", "summary-writer-log-dir", "run.yaml")


def test_a_folder_without_write_permission_is_refused(tmp_path, monkeypatch):
    # Root passes any permission bit, so the permission answer is what the test controls.
    read_only = tmp_path / "shared"
    read_only.mkdir()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: Path(path) != read_only and real_access(path, mode))
    with pytest.raises(ConfigError, match=r"key 'output-model-dir' is .*shared/out, which is not writable "
                                          r"\(no write permission on .*shared\)"):
        check_output_folder(read_only / "out", "output-model-dir", "run.yaml")


def test_lock_holds_pid_and_host_and_is_removed_on_exit(tmp_path):
    with RunLock(tmp_path / "out") as lock:
        owner = json.loads(lock.path.read_text())
        assert owner["pid"] == os.getpid() and owner["host"] == socket.gethostname()
    assert not (tmp_path / "out" / LOCK_NAME).exists()


def test_lock_is_removed_when_the_run_raises(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with RunLock(tmp_path):
            raise KeyboardInterrupt
    assert not (tmp_path / LOCK_NAME).exists()


def test_second_lock_on_a_folder_is_refused_naming_folder_and_pid(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(FolderInUseError, match=rf"{tmp_path} is in use by another training run, pid {os.getpid()}"):
            RunLock(tmp_path).acquire()
        assert (tmp_path / LOCK_NAME).exists()


def test_lock_of_a_dead_process_is_taken_over_with_a_warning(tmp_path):
    pid = dead_pid()
    write_lock(tmp_path, pid=pid, host=socket.gethostname(), process_start=None)
    with pytest.warns(UserWarning, match=rf"taking over the lock of training run pid {pid}"):
        lock = RunLock(tmp_path)
        lock.acquire()
    assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    lock.release()
    assert not lock.path.exists()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from /proc")
def test_lock_of_a_reused_pid_is_taken_over(tmp_path):
    # A container restarted gives its new run the pid of the old one: the start time differs.
    write_lock(tmp_path, pid=os.getpid(), host=socket.gethostname(), process_start="1")
    with pytest.warns(UserWarning, match="no longer running"):
        with RunLock(tmp_path):
            pass


def test_lock_of_another_host_is_refused(tmp_path):
    write_lock(tmp_path, pid=dead_pid(), host="some-other-host", process_start=None)
    with pytest.raises(FolderInUseError, match="on host some-other-host"):
        RunLock(tmp_path).acquire()


def test_unreadable_lock_is_refused_not_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text("garbage")
    with pytest.raises(FolderInUseError, match="does not say which run holds it"):
        RunLock(tmp_path).acquire()
    assert (tmp_path / LOCK_NAME).read_text() == "garbage"


def test_release_leaves_a_lock_another_run_took(tmp_path):
    lock = RunLock(tmp_path)
    lock.acquire()
    write_lock(tmp_path, pid=12345, host="other", process_start=None)
    lock.release()
    assert json.loads((tmp_path / LOCK_NAME).read_text())["pid"] == 12345


def test_an_output_that_is_an_input_is_refused_naming_both(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.json").write_text("[]")
    (data / "point_cloud.parquet").write_text("x")
    inputs = {"train-dataset-json-path": data / "train.json", "pointcloud-parquet-path": data / "point_cloud.parquet",
              "val-dataset-json-path": None}
    with pytest.raises(ConfigError, match=r"run.yaml: key 'output-model-dir' is .*data, where the run writes "
                                          r"train.json, which is the input .* of train-dataset-json-path"):
        check_outputs_are_not_inputs(data / ".", ["train.json", "val.json"], inputs, "run.yaml")
    check_outputs_are_not_inputs(data / "output", ["train.json"], inputs, "run.yaml")  # a folder of its own
    check_outputs_are_not_inputs(data, ["val.json"], inputs, "run.yaml")  # no clash
