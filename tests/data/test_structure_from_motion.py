"""taichi_3dgs.data.structure_from_motion and capture: Ctrl-C stops pycolmap, an interrupted run
leaves no output folder, and the next run continues from the finished stages."""
import json
import signal
import subprocess
import sys
import time

import pycolmap
import pytest
from PIL import Image

from conftest import REPO_ROOT, dataset_path
from script_faults import SCRIPT_TIMEOUT_S
from taichi_3dgs.data.capture import prepare_capture
from taichi_3dgs.data.structure_from_motion import DATABASE, STAGES_JSON, SfmOptions, sequential_pairs


def test_sequential_pairs_are_the_next_images_and_those_powers_of_two_ahead():
    names = [str(i) for i in range(6)]
    pairs = sequential_pairs(names, overlap=2)
    # overlap 2: i + 1, i + 2 and i + 2^0, i + 2^1 (the same ones here)
    assert pairs == [("0", "1"), ("0", "2"), ("1", "2"), ("1", "3"), ("2", "3"), ("2", "4"), ("3", "4"),
                     ("3", "5"), ("4", "5")]
    assert ("0", "4") in sequential_pairs([str(i) for i in range(6)], overlap=3)  # 2^2 ahead


def test_ctrl_c_stops_the_tool_during_extraction_and_keeps_the_staging_folder(tmp_path):
    # pycolmap ignores SIGINT itself: the tool cancels it (run_cancellable) and exits with 130.
    images = dataset_path("colmap_desk") / "images"
    process = subprocess.Popen([sys.executable, str(REPO_ROOT / "tools" / "prepare_images.py"), "--images", images,
                                "--output_dir", "out"], cwd=tmp_path, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    database = tmp_path / ".out.prepare-staging" / "colmap" / DATABASE
    while not database.exists() and process.poll() is None:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=SCRIPT_TIMEOUT_S)
    assert process.returncode == 130, stderr
    assert stderr.splitlines()[-1] == "prepare_images.py: interrupted" and "Traceback" not in stderr
    assert "run the same command to continue" in stdout
    assert not (tmp_path / "out").exists()
    stages = json.loads((database.parent / STAGES_JSON).read_text())
    assert stages["extraction"]["done"] is False


def test_an_interrupted_run_leaves_no_output_and_the_next_one_continues(tmp_path, monkeypatch):
    photos = tmp_path / "photos"
    photos.mkdir()
    for source in sorted((dataset_path("colmap_desk") / "images").glob("*.jpg"))[:18:3]:
        with Image.open(source) as image:
            image.resize((800, 450)).save(photos / source.name, quality=95)
    options = SfmOptions(max_image_size=800)

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
    assert "of 6 images" in summary
    assert (tmp_path / "out" / "train.json").is_file() and not staging.exists()
