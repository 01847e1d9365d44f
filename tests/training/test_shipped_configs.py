"""Every config in config/ loads, and points at the folder its preparation command writes."""
from __future__ import annotations

from pathlib import Path

import pytest

from taichi_3dgs.data.converter_options import BEYOND_CLOUD_POINTS, NGP_VIEW_VOLUME_POINTS
from taichi_3dgs.training.config import load_train_config

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
SCENES = ["demo", "colmap_desk", "colmap_tumbler", "colmap_table_txt", "blender_chair", "ngp_fox"]


@pytest.mark.parametrize("scene", SCENES)
def test_shipped_config_loads_and_reads_data_from_its_scene_folder(scene):
    config = load_train_config(CONFIG_DIR / f"{scene}.yaml")
    data = CONFIG_DIR.parent / "data" / scene
    assert config.train_dataset_json_path == data / "train.json"
    assert config.val_dataset_json_path == data / "val.json"
    assert config.pointcloud_parquet_path == data / "point_cloud.parquet"
    assert config.output_model_dir == CONFIG_DIR.parent / "output" / scene


def test_desk_config_is_the_cpu_check_setting():
    config = load_train_config(CONFIG_DIR / "colmap_desk.yaml")
    assert config.image_downscale_factor == 4 and config.num_iterations == 2000


def test_chair_config_composites_over_white():
    assert load_train_config(CONFIG_DIR / "blender_chair.yaml").background_color == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("scene", [s for s in SCENES if s != "demo"])
def test_real_scene_configs_carry_what_the_converters_write(scene):
    # BENCHMARKS.md "All eight shared captures": scale-schedule everywhere, beyond-cloud points for
    # the captures with a background (not the chair, composited over white), view-volume points for
    # the Instant-NGP fox, no absgrad.
    config = load_train_config(CONFIG_DIR / f"{scene}.yaml")
    assert config.scale_schedule is True
    assert config.adaptive_controller_config.absgrad is False
    assert config.initial_points.beyond_cloud == (0 if scene == "blender_chair" else BEYOND_CLOUD_POINTS)
    assert config.initial_points.random_in_view_volume == (NGP_VIEW_VOLUME_POINTS if scene == "ngp_fox" else 0)
    assert config.initial_points.far_shell == 0
