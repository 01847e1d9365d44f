"""Views: decoding, downscaling with K, RGBA compositing, masks, error messages."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.data.views import load_view, target_size


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
    with pytest.raises(FileNotFoundError, match=r"train.json record 3: image_path .*missing.png not found"):
        load_view(record(tmp_path / "missing.png", 8, 8), 1, 1600, "cpu", "train.json record 3")
