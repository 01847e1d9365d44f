"""atomic_path: complete files only, with the permissions a plain open() would give."""
import os
from pathlib import Path

import pytest

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
