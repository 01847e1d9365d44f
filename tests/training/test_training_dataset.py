"""Training views: the scene extent and the order views are drawn in."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.training.dataset import ViewSampler, scene_extent


def test_scene_extent_is_1_1_times_the_largest_camera_distance_from_the_centroid(tmp_path):
    angles = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    records = []
    for a in angles:
        c2w = np.eye(4)
        c2w[:3, 3] = (3 * np.cos(a) + 1, 3 * np.sin(a), 5.0)
        records.append(CameraRecord(image_path=tmp_path / "x.png", K=np.eye(3), T_pointcloud_camera=c2w,
                                    width=8, height=8))
    assert scene_extent(records) == pytest.approx(3.3)


def test_sampler_visits_every_view_once_per_pass():
    sampler = ViewSampler(5)
    generator = torch.Generator().manual_seed(0)
    first = [sampler.next(generator) for _ in range(5)]
    second = [sampler.next(generator) for _ in range(5)]
    assert sorted(first) == sorted(second) == [0, 1, 2, 3, 4]
    assert first != second

