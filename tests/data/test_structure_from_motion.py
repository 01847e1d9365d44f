"""taichi_3dgs.data.structure_from_motion and capture: Ctrl-C stops pycolmap, an interrupted run
leaves no output folder, and the next run continues from the finished stages."""
import os
import signal
import threading

import pycolmap
import pytest
from PIL import Image

from conftest import dataset_path
from taichi_3dgs.data.capture import prepare_capture
from taichi_3dgs.data.structure_from_motion import (DATABASE, SfmOptions, quiet_colmap, run_cancellable,
                                                    sequential_pairs)


def test_sequential_pairs_are_the_next_images_and_those_powers_of_two_ahead():
    names = [str(i) for i in range(6)]
    pairs = sequential_pairs(names, overlap=2)
    # overlap 2: i + 1, i + 2 and i + 2^0, i + 2^1 (the same ones here)
    assert pairs == [("0", "1"), ("0", "2"), ("1", "2"), ("1", "3"), ("2", "3"), ("2", "4"), ("3", "4"),
                     ("3", "5"), ("4", "5")]
    assert ("0", "4") in sequential_pairs([str(i) for i in range(6)], overlap=3)  # 2^2 ahead


def test_ctrl_c_cancels_a_running_extraction(tmp_path):
    quiet_colmap()
    images = dataset_path("colmap_desk") / "images"
    database = tmp_path / DATABASE
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        run_cancellable(lambda token: pycolmap.extract_features(str(database), str(images),
                                                                cancellation_token=token))
    timer.cancel()
    handle = pycolmap.Database.open(str(database))
    extracted = sum(handle.exists_keypoints(image.image_id) for image in handle.read_all_images())
    handle.close()
    assert extracted < len(list(images.glob("*.jpg")))


def test_an_interrupted_run_leaves_no_output_and_the_next_one_continues(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    for source in sorted((dataset_path("colmap_desk") / "images").glob("*.jpg"))[:8:2]:
        with Image.open(source) as image:
            image.resize((480, 270)).save(photos / source.name, quality=95)
    options = SfmOptions(max_image_size=480)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(pycolmap, "match_image_pairs", interrupt)
    with pytest.raises(KeyboardInterrupt):
        prepare_capture(tmp_path / "out", images=photos, options=options)
    assert not (tmp_path / "out").exists()
    staging = tmp_path / ".out.prepare-staging"
    assert (staging / "colmap" / DATABASE).is_file()
    monkeypatch.undo()
    result = prepare_capture(tmp_path / "out", images=photos, options=options)
    summary = "\n".join(result.messages)
    assert "extraction 0.0 s (reused)" in summary and "matching 0.0 s (reused)" not in summary
    assert "of 4 images" in summary
    assert (tmp_path / "out" / "train.json").is_file() and not staging.exists()
