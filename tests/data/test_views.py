"""Views: decoding, downscaling with K, RGBA compositing, masks, error messages."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO_ROOT, dataset_path
from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.data.views import load_view, load_views, target_size


def record(path: Path, width: int, height: int, mask_path=None) -> CameraRecord:
    K = np.array([[100.0, 0, width / 2], [0, 100.0, height / 2], [0, 0, 1]])
    return CameraRecord(image_path=path, K=K, T_pointcloud_camera=np.eye(4), width=width, height=height,
                        camera_id=0, mask_path=mask_path)


def test_downscale_rounds_and_the_long_side_is_capped():
    assert target_size(1906, 1070, 4, 1600) == (476, 268)
    assert target_size(3200, 1800, 1, 1600) == (1600, 900)
    assert target_size(800, 800, 1, 1600) == (800, 800)


def test_image_is_downscaled_and_K_follows(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.full((60, 80, 3), 200, np.uint8)).save(path)
    view = load_view(record(path, 80, 60), 4, 1600, "cpu")
    assert view.image.shape == (15, 20, 3) and view.image.dtype == torch.uint8
    assert torch.allclose(view.K, torch.tensor([[25.0, 0, 10], [0, 25.0, 7.5], [0, 0, 1]]))
    assert view.width == 20 and view.height == 15


def test_rgba_image_is_composited_over_the_background(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:2, :, 3] = 255  # top half opaque, bottom half transparent
    path = tmp_path / "a.png"
    Image.fromarray(rgba, "RGBA").save(path)
    view = load_view(record(path, 4, 4), 1, 1600, "cpu")
    target = view.target(torch.tensor([0.0, 0.0, 1.0]))
    assert torch.equal(target[0, 0], torch.tensor([1.0, 0.0, 0.0]))
    assert torch.equal(target[3, 3], torch.tensor([0.0, 0.0, 1.0]))


def test_mask_is_loaded_and_resized_with_the_image(tmp_path):
    path, mask_path = tmp_path / "a.png", tmp_path / "m.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    mask = np.zeros((8, 8), np.uint8)
    mask[:, 4:] = 255
    Image.fromarray(mask).save(mask_path)
    view = load_view(record(path, 8, 8, mask_path), 2, 1600, "cpu")
    assert view.mask.shape == (4, 4)
    assert view.mask[:, 2:].all() and not view.mask[:, :2].any()


def test_missing_image_error_names_the_record_field_and_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"train.json: record 3: image_path .*missing.png not found"):
        load_view(record(tmp_path / "missing.png", 8, 8), 1, 1600, "cpu", "train.json: record 3")


def test_load_views_names_records_as_the_camera_json_reader_does(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(path)
    records = [record(path, 8, 6), record(tmp_path / "gone.png", 8, 6)]
    with pytest.raises(FileNotFoundError, match=r"^/data/val.json: record 1: image_path .*gone.png not found"):
        load_views(records, 1, 1600, "cpu", "/data/val.json")


def test_portrait_image_downscaled_with_per_side_rounding_is_accepted_and_K_follows(tmp_path):
    # The real 1080x1920 fox frame at 51x92: 1080 * 0.04766 = 51.47 -> 51, 1920 * 0.04766 = 91.5 -> 92.
    # (The height predicted from the width is 1.3 px off; the width predicted from the height 0.75 px.)
    path = tmp_path / "0001.png"
    Image.open(dataset_path("ngp_fox") / "images" / "0001.jpg").resize((51, 92), Image.Resampling.LANCZOS).save(path)
    camera = CameraRecord(image_path=path, K=np.array([[1400.0, 0, 540.5], [0, 1390.0, 960.25], [0, 0, 1]]),
                          T_pointcloud_camera=np.eye(4), width=1080, height=1920)
    view = load_view(camera, 1, 1600, "cpu")
    assert (view.width, view.height) == (51, 92)
    expected = np.diag([51 / 1080, 92 / 1920, 1.0]) @ camera.K
    np.testing.assert_allclose(view.K.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("image_size", [(80, 80), (60, 80), (80, 58)])
def test_image_of_another_aspect_ratio_is_refused_naming_record_file_and_both_sizes(tmp_path, image_size):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((image_size[1], image_size[0], 3), np.uint8)).save(path)
    with pytest.raises(ValueError) as error:
        load_view(record(path, 80, 60), 1, 1600, "cpu", "train.json: record 2")
    assert str(error.value) == (
        f"train.json: record 2: image_path {path}: image is {image_size[0]}x{image_size[1]} pixels but "
        "camera_width x camera_height is 80x60; expected the same aspect ratio (an image resampled from "
        "80x60, within 1 px)")


def test_image_one_pixel_off_the_camera_aspect_is_accepted(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((59, 80, 3), np.uint8)).save(path)
    assert load_view(record(path, 80, 60), 1, 1600, "cpu").image.shape == (59, 80, 3)


def test_mask_of_another_size_than_its_image_is_refused(tmp_path):
    path, mask_path = tmp_path / "a.png", tmp_path / "m.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    Image.fromarray(np.full((4, 4), 255, np.uint8)).save(mask_path)  # same aspect, other size
    expected = (f"val.json: record 0: mask_path {mask_path} is 4x4 pixels but image_path {path} is 8x8; "
                "expected a mask of the image's size")
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        load_view(record(path, 8, 8, mask_path), 1, 1600, "cpu", "val.json: record 0")


def test_missing_mask_error_names_the_record_field_and_file(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    with pytest.raises(FileNotFoundError, match=r"^val.json: record 0: mask_path .*no_mask.png not found"):
        load_view(record(path, 8, 8, tmp_path / "no_mask.png"), 1, 1600, "cpu", "val.json: record 0")


def test_truncated_real_jpeg_is_refused_naming_the_record_and_file(tmp_path):
    data = (dataset_path("colmap_table_txt") / "images" / "14table.jpeg").read_bytes()
    path = tmp_path / "14table.jpeg"
    path.write_bytes(data[:len(data) // 3])
    with pytest.raises(ValueError, match=rf"^train.json: record 5: image_path {re.escape(str(path))}: cannot decode: "
                                         r".*truncated"):
        load_view(record(path, 768, 1024), 1, 1600, "cpu", "train.json: record 5")


def test_file_that_is_not_an_image_is_refused(tmp_path):
    path, mask_path = tmp_path / "a.png", tmp_path / "m.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(path)
    mask_path.write_text("not a png")
    with pytest.raises(ValueError, match=f"^val.json: record 0: mask_path {re.escape(str(mask_path))}: cannot decode"):
        load_view(record(path, 8, 8, mask_path), 1, 1600, "cpu", "val.json: record 0")


def test_render_script_refuses_a_record_whose_image_has_another_aspect_and_writes_nothing(tmp_path):
    # The real 768x1024 (portrait) table photo, recorded as 1024x768 (landscape).
    image = dataset_path("colmap_table_txt") / "images" / "14table.jpeg"
    item = {"image_path": str(image), "T_pointcloud_camera": np.eye(4).tolist(),
            "camera_intrinsics": [[765.9, 0, 512], [0, 765.9, 384], [0, 0, 1]],
            "camera_width": 1024, "camera_height": 768}
    (tmp_path / "val.json").write_text(json.dumps([item]))
    scene = dataset_path("3dgs_trained_ply") / "point_cloud" / "iteration_7000" / "point_cloud.ply"
    result = subprocess.run([sys.executable, str(REPO_ROOT / "gaussian_point_render.py"), "--scene", str(scene),
                             "--cameras", "val.json", "--output_dir", "out"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert (f"gaussian_point_render.py: error: val.json: record 0: image_path {image}: image is 768x1024 pixels "
            "but camera_width x camera_height is 1024x768; expected the same aspect ratio") in result.stderr
    assert "Traceback" not in result.stderr
    assert os.listdir(tmp_path) == ["val.json"]
