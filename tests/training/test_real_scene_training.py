"""Short training runs on a real capture, heavily downscaled, from the converter's own YAML."""
from __future__ import annotations

import dataclasses

import torch
from conftest import dataset_path

from taichi_3dgs import RasterizerConfig
from taichi_3dgs.data.cameras import read_cameras_json
from taichi_3dgs.data.colmap import convert_colmap
from taichi_3dgs.data.views import load_views
from taichi_3dgs.scene.model import load_initial_model
from taichi_3dgs.training.config import load_train_config
from taichi_3dgs.training.evaluation import evaluate
from taichi_3dgs.training.trainer import train


def test_colmap_desk_train_view_psnr_rises_within_200_steps(tmp_path):
    convert_colmap(dataset_path("colmap_desk"), tmp_path / "desk", image_downscale_factor=16)
    config = load_train_config(tmp_path / "desk" / "train_config.yaml")  # the converter's YAML, as is
    assert config.image_downscale_factor == 16
    config = dataclasses.replace(
        config, num_iterations=200, val_interval=200, checkpoint_interval=200,
        logging=dataclasses.replace(config.logging, progress_bar=False),
    )
    result = train(config)

    views = load_views(read_cameras_json(config.train_dataset_json_path), 16, 1600, "cpu")
    assert views[0].width == 119 and views[0].height == 67
    psnr_of = lambda path: evaluate(load_initial_model(path), views, RasterizerConfig(), torch.zeros(3)).psnr  # noqa: E731
    initial = psnr_of(config.pointcloud_parquet_path)
    final = psnr_of(config.output_model_dir / "final_scene.parquet")
    print(f"desk 1/16, 200 steps: train-view PSNR {initial:.2f} -> {final:.2f} dB, "
          f"val PSNR {result.evaluation.psnr:.2f} dB, {result.num_gaussians} Gaussians")
    assert final > 22.0
    assert final > initial + 8.0
    assert result.evaluation.psnr > 21.0  # held-out every-8th views
