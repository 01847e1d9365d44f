"""atomic_path: complete files only, with the permissions a plain open() would give."""
import errno
import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from taichi_3dgs.atomic_io import atomic_path, remove_stale_temporaries, write_text_atomic


def test_written_file_has_the_mode_of_a_plain_open(tmp_path: Path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_text_atomic(tmp_path / "atomic.txt", "x")
    assert os.stat(tmp_path / "atomic.txt").st_mode == os.stat(plain).st_mode


def test_failed_write_leaves_the_destination_and_no_temporary_file(tmp_path: Path):
    target = tmp_path / "scene.json"
    target.write_text("original")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("writer failed")
    assert target.read_text() == "original"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene.json"]


def test_stale_temporaries_of_a_killed_write_are_removed_and_nothing_else(tmp_path: Path):
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "scene.parquet") as tmp:
            name = tmp.name
            raise RuntimeError("writer failed")
    # What a killed writer leaves: atomic_path's own temporary name, kept.
    stale = tmp_path / name
    stale.write_text("half")
    keep = ["scene.parquet.tmp", ".hidden", "notes.tmp"]
    for other in keep:
        (tmp_path / other).write_text("mine")
    assert remove_stale_temporaries(tmp_path) == [stale]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)
    assert remove_stale_temporaries(tmp_path / "missing") == []


# A write beyond a file-size limit (`ulimit -f`) fails with EFBIG, as a full disk with ENOSPC: the
# same path through every writer, without filling a disk.
FILE_SIZE_LIMIT = 64 * 1024


def _run_limited(args: list[str], cwd: Path, limit_bytes: int = FILE_SIZE_LIMIT) -> subprocess.CompletedProcess:
    """Run `python <args>` in `cwd` with files limited to FILE_SIZE_LIMIT bytes (Python ignores
    SIGXFSZ, so an oversized write fails with EFBIG instead of killing the process)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    # Taichi's kernel cache is a write too: off, so that only the tool's own outputs meet the limit.
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          preexec_fn=limit, env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "TI_OFFLINE_CACHE": "0"})


@pytest.mark.parametrize("raised", [OSError(errno.ENOSPC, "No space left on device"),
                                    OSError("[Errno 27] Error writing bytes to file. Detail: [errno 27] File too large")])
def test_a_write_out_of_room_names_the_file_and_says_the_disk_is_full(tmp_path: Path, raised):
    target = tmp_path / "scene.parquet"
    with pytest.raises(OSError) as caught:
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise raised
    assert caught.value.filename == str(target)
    assert "disk or the quota is full" in caught.value.strerror
    assert sorted(tmp_path.iterdir()) == []


@pytest.mark.parametrize("writer", [
    "from taichi_3dgs.training.checkpoint import save_checkpoint; save_checkpoint(Path('out'), 7, {'x': torch.zeros(100_000)})",
    "from taichi_3dgs.scene.parquet import write_scene_parquet; from tests.scene.synthetic_scenes import random_scene; "
    "write_scene_parquet(Path('out/scene.parquet'), random_scene(num_gaussians=2_000))",
])
def test_checkpoints_and_scenes_beyond_the_file_size_limit_fail_naming_the_file(tmp_path: Path, writer):
    code = ("import torch; from pathlib import Path\n"
            "try:\n    " + writer + "\nexcept OSError as e:\n    print('OSError', e.filename, e.strerror)\n")
    result = _run_limited(["-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    caught = result.stdout.strip().splitlines()[-1]
    assert caught.startswith("OSError out/") and "disk or the quota is full" in caught, result.stdout
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]


def test_a_render_beyond_the_file_size_limit_names_the_file_and_removes_the_folder_it_created(tmp_path: Path):
    from tests.viewer.test_render_faults import _poses, _scene_parquet
    scene, poses = _scene_parquet(tmp_path), _poses(tmp_path)
    result = _run_limited([str(REPO_ROOT / "gaussian_point_render.py"), "--scene", scene, "--cameras", poses,
                           "--output_dir", "renders"], tmp_path, limit_bytes=300)
    assert result.returncode == 1, result.stderr
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith("gaussian_point_render.py: error: renders/") and "disk or the quota is full" in error, error
    assert not (tmp_path / "renders").exists()
