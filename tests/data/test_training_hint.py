"""The converters' closing lines (taichi_3dgs.data.cli.training_hint): the training command, the
time the official schedule implies on this machine's device, and a CPU-sized run whose overrides
the trainer accepts."""
from __future__ import annotations

import shlex

import pytest
import torch
from conftest import dataset_path

from taichi_3dgs.data.cli import training_hint
from taichi_3dgs.training.config import TrainConfig, apply_overrides
from taichi_3dgs.training.run_length import schedule_for_run_length


def _quick_overrides(lines):
    args = shlex.split(lines[-1])
    assert args[:4] == ["python", "gaussian_point_train.py", "--train_config", "data/x/train_config.yaml"]
    return args[4:]


@pytest.mark.parametrize("cuda, expected", [(False, "many hours on this machine's CPU"),
                                            (True, "roughly an hour on this machine's CUDA GPU")])
def test_the_hint_names_the_official_schedule_s_time_on_this_device(monkeypatch, cuda, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    lines = training_hint("data/x/train_config.yaml", 1)
    assert lines[0] == "train with: python gaussian_point_train.py --train_config data/x/train_config.yaml"
    assert lines[1].startswith("  the official schedule, 30,000 steps at full resolution: " + expected)


@pytest.mark.parametrize("written_factor, quick_factor", [(1, 4), (2, 4), (8, 8)])
def test_the_cpu_sized_run_is_accepted_by_the_trainer(written_factor, quick_factor):
    overrides = _quick_overrides(training_hint("data/x/train_config.yaml", written_factor))
    config = apply_overrides(TrainConfig(image_downscale_factor=written_factor, scale_schedule=True), overrides)
    assert config.num_iterations == 2000
    # The written config's scale-schedule makes the official densification end 15,000 -> 1,000.
    assert schedule_for_run_length(config).adaptive_controller_config.densify_until_iteration == 1000
    assert config.image_downscale_factor == quick_factor



@pytest.mark.parametrize("installed", [True, False], ids=["taichi-3dgs prepare-blender", "prepare_blender_nerf.py"])
def test_a_converter_names_the_trainer_the_way_it_was_itself_run(tmp_path, capsys, installed):
    from taichi_3dgs.commands import main
    from taichi_3dgs.commands.prepare_blender import main as script_main

    args = ["--scene_path", str(dataset_path("blender_chair")), "--output_dir", str(tmp_path), "--num_points", "50"]
    assert (main(["prepare-blender", *args]) if installed else script_main(args)) == 0
    trainer = "taichi-3dgs train" if installed else "python gaussian_point_train.py"
    out = capsys.readouterr().out.splitlines()
    assert out[-4] == f"train with: {trainer} --train_config {tmp_path / 'train_config.yaml'}"
    assert out[-1].startswith(f"  {trainer} --train_config ")
