"""`rasterisation-config.antialiased: true` end to end: the trainer trains with the Mip-Splatting
filter, every saved scene records it, and the renderer and the viewer render the val views to the
trainer's val PSNR; the same scene rendered without the filter scores differently."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from test_trainer import demo_config

from taichi_3dgs.data.cameras import read_cameras_json
from taichi_3dgs.data.demo_scene import DemoSceneSpec, make_demo_scene
from taichi_3dgs.data.views import load_views
from taichi_3dgs.metrics import psnr
from taichi_3dgs.scene.io import read_scene
from taichi_3dgs.training.trainer import train
from taichi_3dgs.viewer.evaluation import render_and_evaluate
from taichi_3dgs.viewer.rendering import render_scene_view
from taichi_3dgs.viewer.scene_objects import compose_objects, load_scene_objects

# 32 x 32 px views: the initial Gaussians cover few pixels, where the filter's opacity
# compensation matters (without it the val PSNR moves by about 0.5 dB, measured).
DOWNSCALE = 4
STEPS = 30
TOLERANCE_DB = 0.05


@pytest.fixture(scope="module")
def antialiased_run(tmp_path_factory):
    """(demo folder, output folder, metrics.json val PSNR) of 30 antialiased steps."""
    scene = make_demo_scene(tmp_path_factory.mktemp("demo"), DemoSceneSpec())
    out = tmp_path_factory.mktemp("run")
    train(demo_config(scene, out, **{
        "num-iterations": STEPS, "val-interval": STEPS, "checkpoint-interval": STEPS,
        "image-downscale-factor": DOWNSCALE, "rasterisation-config": {"antialiased": True},
    }))
    return scene, out, json.loads((out / "metrics.json").read_text())["val"]["psnr"]


def test_every_saved_scene_records_the_filter(antialiased_run):
    _, out, _ = antialiased_run
    for name in ("final_scene.parquet", "point_cloud.ply"):  # the last step's scene is saved only as these
        assert read_scene(out / name).antialiased, name


@pytest.mark.parametrize("name", ["final_scene.parquet", "point_cloud.ply"])
def test_the_renderer_reproduces_the_trainers_val_psnr(antialiased_run, tmp_path, name):
    scene, out, val_psnr = antialiased_run
    metrics = render_and_evaluate(out / name, scene / "val.json", tmp_path, image_downscale_factor=DOWNSCALE)
    # The renderer scores its 8-bit PNGs, the trainer its float renders: a few 0.001 dB apart.
    assert metrics["val"]["psnr"] == pytest.approx(val_psnr, abs=TOLERANCE_DB)


def test_the_viewer_reproduces_the_trainers_val_psnr_and_not_without_the_filter(antialiased_run):
    scene, out, val_psnr = antialiased_run
    views = load_views(read_cameras_json(scene / "val.json"), DOWNSCALE, 1600, "cpu")
    merged = compose_objects(load_scene_objects([out / "final_scene.parquet"]))

    def mean_psnr(gaussians):
        scores = [float(psnr(render_scene_view(gaussians, view.viewmat.numpy(), view.K.numpy(), view.width,
                                               view.height).image.clamp(0.0, 1.0), view.target(torch.zeros(3))))
                  for view in views]
        return sum(scores) / len(scores)

    assert mean_psnr(merged) == pytest.approx(val_psnr, abs=TOLERANCE_DB)
    assert abs(mean_psnr(replace(merged, antialiased=False)) - val_psnr) > 4 * TOLERANCE_DB
