"""Per-image exposure compensation (exposure_transforms.ExposureTransforms, exposure.json) and its
trainer hooks.

References: the colour transform against a per-pixel numpy A c + b, the learning rate against the
official `get_expon_lr_func` values worked out by hand, recovery against a known gain and offset
put on a render (a few dozen training steps, where each image is seen once or twice, move every
transform by about the learning rate whatever its image, as Adam's first steps do). The trainer
tests run on `camera_scene.rendered_scene` with exposure compensation alone; both features
together, resume included: test_pose_optimization.py.
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from camera_scene import GAIN, OFFSET, camera_config, demo, rendered_scene  # noqa: F401  (fixtures)

from taichi_3dgs import RasterizerConfig
from taichi_3dgs.data.cameras import read_cameras_json, write_cameras_json
from taichi_3dgs.data.views import load_views
from taichi_3dgs.scene.model import load_initial_model
from taichi_3dgs.training.camera_optimization import EXPOSURE_KEY, POSE_KEY, CameraOptimization
from taichi_3dgs.training.exposure_transforms import ExposureTransforms
from taichi_3dgs.training.exposure_file import read_exposure_json, write_exposure_json
from taichi_3dgs.training.checkpoint import latest_checkpoint, load_checkpoint
from taichi_3dgs.training.config import ConfigError, ExposureCompensationConfig, parse_train_config
from taichi_3dgs.training.evaluation import evaluate, render_model_view
from taichi_3dgs.training.losses import l1_loss
from taichi_3dgs.training.trainer import train


def test_identity_transforms_leave_the_render_unchanged():
    exposure = ExposureTransforms(["a.png", "b.png"], ExposureCompensationConfig(), 100, "cpu")
    image = torch.rand(5, 7, 3)
    assert torch.equal(exposure.apply(1, image), image)


def test_the_transform_maps_each_colour_c_to_a_c_plus_b():
    exposure = ExposureTransforms(["a.png", "b.png"], ExposureCompensationConfig(), 100, "cpu")
    rng = np.random.default_rng(0)
    transform = rng.normal(size=(3, 4))
    with torch.no_grad():
        exposure.transforms[1] = torch.tensor(transform)
    image = rng.uniform(size=(4, 6, 3))
    ours = exposure.apply(1, torch.tensor(image, dtype=torch.float32)).detach().numpy()
    expected = np.zeros_like(image)
    for row in range(4):
        for column in range(6):
            expected[row, column] = transform[:, :3] @ image[row, column] + transform[:, 3]
    np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-5)
    assert torch.equal(exposure.apply(0, torch.tensor(image, dtype=torch.float32)).detach(),
                       torch.tensor(image, dtype=torch.float32))  # the other image's transform is untouched


def test_exposure_compensation_recovers_a_known_gain_and_offset(demo):
    """The target is a render with colours GAIN c + OFFSET; fitting that image's transform to the
    plain render with the official settings (0.01 -> 0.001, no weight decay) gives
    [diag(GAIN) | OFFSET]: the transform acts on renders, so it is the gain itself (its inverse maps
    the image back)."""
    records = read_cameras_json(demo / "train.json")
    view = load_views(records[3:4], 1, 1600, "cpu")[0]
    model = load_initial_model(demo / "point_cloud.parquet", initial_opacity=0.8)
    with torch.no_grad():  # every 4th pixel: the fit needs colours, not their layout
        render = render_model_view(model, view, RasterizerConfig(), torch.zeros(3)).image[::4, ::4].contiguous()
    target = render * torch.tensor(GAIN, dtype=torch.float32) + torch.tensor(OFFSET, dtype=torch.float32)
    steps = 600
    # One image's transform fitted alone: the mean over the two is not kept at the identity.
    exposure = ExposureTransforms(["other.png", view.name],
                                  ExposureCompensationConfig(weight_decay=0.0, keep_mean_identity=False), steps, "cpu")
    for step in range(1, steps + 1):
        exposure.set_learning_rate(step)
        l1_loss(exposure.apply(1, render), target, None).backward()
        exposure.step()
    fitted = exposure.as_arrays()[view.name]
    np.testing.assert_allclose(np.diag(fitted[:, :3]), GAIN, rtol=0.05)
    assert np.abs(fitted[:, :3] - np.diag(GAIN)).max() < 0.05
    np.testing.assert_allclose(fitted[:, 3], OFFSET, rtol=0, atol=0.02)


def test_learning_rate_is_the_official_exponential_schedule_with_delay():
    config = ExposureCompensationConfig(learning_rate=0.01, learning_rate_final=0.001, learning_rate_delay_steps=10,
                                        learning_rate_delay_mult=0.5)
    exposure = ExposureTransforms(["a.png"], config, 100, "cpu")
    rates = []
    for step in (0, 5, 10, 100, 200):
        exposure.set_learning_rate(step)
        rates.append(exposure.optimizer.param_groups[0]["lr"])
    # delay 0.5 + 0.5 sin(pi/2 step/10) until step 10; 0.01 (1 - t) + ... in log space, t = step / 100
    expected = [0.005, 0.01 * 10 ** -0.05 * (0.5 + 0.5 * math.sin(math.pi / 4)), 0.01 * 10 ** -0.1, 0.001, 0.001]
    assert rates == pytest.approx(expected, rel=1e-12)


def test_default_schedule_decays_from_0_01_to_0_001_without_delay():
    exposure = ExposureTransforms(["a.png"], ExposureCompensationConfig(), 1000, "cpu")
    rates = []
    for step in (0, 500, 1000):
        exposure.set_learning_rate(step)
        rates.append(exposure.optimizer.param_groups[0]["lr"])
    assert rates == pytest.approx([0.01, 0.01 * 10 ** -0.5, 0.001], rel=1e-12)


def test_exposure_state_dict_round_trips_and_refuses_other_images():
    exposure = ExposureTransforms(["a.png", "b.png"], ExposureCompensationConfig(), 100, "cpu")
    exposure.transforms.sum().backward()
    exposure.step()
    restored = ExposureTransforms(["a.png", "b.png"], ExposureCompensationConfig(), 100, "cpu")
    restored.load_state_dict(exposure.state_dict())
    assert torch.equal(restored.transforms, exposure.transforms)
    assert torch.equal(restored.optimizer.state_dict()["state"][0]["exp_avg_sq"],
                       exposure.optimizer.state_dict()["state"][0]["exp_avg_sq"])
    other = ExposureTransforms(["a.png", "c.png"], ExposureCompensationConfig(), 100, "cpu")
    with pytest.raises(ValueError, match="its images are not this run's training images"):
        other.load_state_dict(exposure.state_dict())


def test_exposure_json_round_trips_exactly(tmp_path):
    rng = np.random.default_rng(1)
    transforms = {"0001.jpg": rng.normal(size=(3, 4)), "0002.jpg": np.eye(3, 4)}
    write_exposure_json(tmp_path / "exposure.json", transforms)
    back = read_exposure_json(tmp_path / "exposure.json")
    assert list(back) == ["0001.jpg", "0002.jpg"]
    for name, matrix in transforms.items():
        assert np.array_equal(back[name], matrix)
    assert json.loads((tmp_path / "exposure.json").read_text())["0002.jpg"] == np.eye(3, 4).tolist()


@pytest.mark.parametrize("content, message", [
    ("[]", "top level is a JSON list; expected an object"),
    ('{"a.png": [[1, 0, 0], [0, 1, 0], [0, 0, 1]]}', "image 'a.png': .* is not a 3x4 affine colour transform"),
    ('{"a.png": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, "x", 0]]}', "image 'a.png'"),
    ('{"a.png": [[1, 0, 0, NaN], [0, 1, 0, 0], [0, 0, 1, 0]]}', "3 rows of 4 finite numbers"),
    ("{", "not valid JSON"),
])
def test_bad_exposure_json_is_refused_naming_the_file_and_image(tmp_path, content, message):
    path = tmp_path / "exposure.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=f"{path}: .*{message}"):
        read_exposure_json(path)


def test_duplicate_image_names_are_refused_naming_both_records(demo, tmp_path):
    records = read_cameras_json(demo / "train.json")[:3]
    copy = tmp_path / "copy" / records[0].image_path.name
    copy.parent.mkdir()
    copy.write_bytes(records[0].image_path.read_bytes())
    records.append(dataclasses.replace(records[0], image_path=copy))
    write_cameras_json(tmp_path / "train.json", records)
    config = parse_train_config({"train-dataset-json-path": str(tmp_path / "train.json"),
                                 "pointcloud-parquet-path": str(demo / "point_cloud.parquet"),
                                 "exposure-compensation": True}, "cfg.yaml")
    views = load_views(records, 1, 1600, "cpu")
    with pytest.raises(ValueError, match=r"train.json: records 0 and 3 both have an image named 'view_001.png'; "
                                         r"cfg.yaml key 'exposure-compensation' needs unique image file names"):
        CameraOptimization(config, records, views, "cpu", "cfg.yaml")


def test_exposure_compensation_is_off_by_default_with_the_official_schedule():
    config = parse_train_config({})
    assert config.exposure_compensation is False
    assert config.exposure_compensation_config == ExposureCompensationConfig(
        learning_rate=0.01, learning_rate_final=0.001, learning_rate_delay_steps=0, learning_rate_delay_mult=0.0,
        weight_decay=0.1, keep_mean_identity=True)


@pytest.mark.parametrize("section, message", [
    ({"learning-rate": 0}, "'exposure-compensation-config.learning-rate' must be > 0"),
    ({"learning-rate-final": 0.0}, "'exposure-compensation-config.learning-rate-final' must be > 0"),
    ({"learning-rate-delay-steps": -1}, "'exposure-compensation-config.learning-rate-delay-steps' must be >= 0"),
    ({"learning-rate-delay-mult": 1.5}, r"'exposure-compensation-config.learning-rate-delay-mult' must be in \[0, 1\]"),
    ({"learning-rate-delay-steps": 1.5}, "'exposure-compensation-config.learning-rate-delay-steps': expected an "
                                         "integer"),
    ({"keep-mean-identity": "yes"}, "'exposure-compensation-config.keep-mean-identity': expected true or false"),
    ({"weight-decay": -0.1}, "'exposure-compensation-config.weight-decay' must be >= 0"),
    ({"weight-decay": "nan"}, "'exposure-compensation-config.weight-decay'"),
])
def test_bad_exposure_settings_are_refused_naming_the_key(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_train_config({"exposure-compensation-config": section}, "cfg.yaml")


@pytest.fixture(scope="module")
def exposure_run(rendered_scene, tmp_path_factory):
    """14 steps with exposure compensation alone (the official learning rates), evaluated at 7 and 14."""
    config = camera_config(rendered_scene, tmp_path_factory.mktemp("exposure"), False,
                           **{"exposure-compensation": True, "num-iterations": 14, "val-interval": 7})
    return config, train(config)


def test_exposure_json_holds_each_training_image_transform(exposure_run, rendered_scene):
    config, _ = exposure_run
    out = config.output_model_dir
    transforms = read_exposure_json(out / "exposure.json")
    names = [record.image_path.name for record in read_cameras_json(rendered_scene / "train.json")]
    assert list(transforms) == names
    checkpoint = load_checkpoint(latest_checkpoint(out), "cpu")
    assert POSE_KEY not in checkpoint
    assert checkpoint[EXPOSURE_KEY]["image_names"] == names
    saved = checkpoint[EXPOSURE_KEY]["transforms"].double().numpy()
    for name, matrix in zip(names, saved):
        assert np.array_equal(transforms[name], matrix)
    assert max(np.abs(matrix - np.eye(3, 4)).max() for matrix in transforms.values()) > 1e-3  # learnt
    # Without pose optimisation train.json holds the cameras as given.
    assert read_cameras_json(out / "train.json") == read_cameras_json(rendered_scene / "train.json")


def test_validation_scores_the_plain_render(exposure_run):
    config, result = exposure_run
    scene = load_initial_model(config.output_model_dir / "final_scene.parquet")
    val_views = load_views(read_cameras_json(config.val_dataset_json_path), 1, 1600, "cpu")
    assert result.evaluation.psnr == pytest.approx(evaluate(scene, val_views, RasterizerConfig(), torch.zeros(3)).psnr,
                                                   abs=1e-9)


def test_keeping_the_mean_at_the_identity_shifts_every_transform_alike():
    """After each step mean_i M_i = [I | 0]; the differences between the images' transforms are
    those that Adam's step gave."""
    config = ExposureCompensationConfig(learning_rate=0.1, learning_rate_final=0.1)
    exposure = ExposureTransforms(["a.png", "b.png", "c.png"], config, 10, "cpu")
    free = ExposureTransforms(["a.png", "b.png", "c.png"], dataclasses.replace(config, keep_mean_identity=False),
                              10, "cpu")
    image = torch.rand(4, 4, 3)
    for part in (exposure, free):
        part.set_learning_rate(1)
        part.apply(1, image).sum().backward()  # only image 1 moves (Adam: by the rate)
        part.step()
    mean = exposure.transforms.detach().mean(dim=0)
    torch.testing.assert_close(mean, torch.eye(3, 4), rtol=0, atol=1e-6)
    assert float((free.transforms.detach().mean(dim=0) - torch.eye(3, 4)).abs().max()) > 0.01  # the free ones drift
    shift = free.transforms.detach() - exposure.transforms.detach()
    torch.testing.assert_close(shift, shift[:1].expand_as(shift), rtol=0, atol=1e-6)


def test_weight_decay_is_adams_l2_towards_the_identity():
    """Coupled L2 on T - [I | 0]: the same steps as torch's Adam(weight_decay) on the offsets
    D = T - [I | 0] with the same photometric gradients (the mean is left free here)."""
    config = ExposureCompensationConfig(learning_rate=0.05, learning_rate_final=0.05, weight_decay=0.5,
                                        keep_mean_identity=False)
    exposure = ExposureTransforms(["a.png", "b.png"], config, 10, "cpu")
    rng = np.random.default_rng(1)
    start = torch.tensor(rng.normal(scale=0.2, size=(2, 3, 4)), dtype=torch.float32)
    with torch.no_grad():
        exposure.transforms += start
    offsets = start.clone().requires_grad_(True)
    reference = torch.optim.Adam([offsets], lr=0.05, weight_decay=0.5)
    image, target = torch.rand(4, 4, 3), torch.rand(4, 4, 3)
    for step in range(1, 11):
        exposure.set_learning_rate(step)
        l1_loss(exposure.apply(0, image), target, None).backward()  # image 1: only the decay acts
        exposure.step()
        transform = offsets[0] + torch.eye(3, 4)
        l1_loss(image @ transform[:, :3].T + transform[:, 3], target, None).backward()
        reference.step()
        reference.zero_grad()
    torch.testing.assert_close(exposure.transforms.detach() - torch.eye(3, 4), offsets.detach(), rtol=0, atol=1e-6)
    # Image 1 got no photometric gradient: the decay alone pulled it towards the identity (Adam's
    # steps of about the rate overshoot the smallest entries, so the whole offset is compared).
    assert float((exposure.transforms.detach()[1] - torch.eye(3, 4)).norm()) < 0.5 * float(start[1].norm())


# Gains of the training images in gained_scene (cycling over the images); they average to 1, the
# exposure of the untouched val images.
GAINS = np.array([0.8, 1.2, 1.0])


@pytest.fixture(scope="module")
def gained_scene(rendered_scene, tmp_path_factory) -> Path:
    """The first six training cameras of rendered_scene (true poses), image i given the gain
    GAINS[i % 3] (colours g c, each gain twice); val.json untouched. Six views, so that each image
    is seen often in a short run."""
    root = tmp_path_factory.mktemp("gained")
    records = read_cameras_json(rendered_scene / "true_train.json")[:6]
    gained = []
    for index, record in enumerate(records):
        image = np.asarray(Image.open(record.image_path), dtype=np.float64) / 255.0
        path = root / record.image_path.name
        pixels = np.clip(image * GAINS[index % len(GAINS)], 0.0, 1.0)
        Image.fromarray(np.round(pixels * 255.0).astype(np.uint8)).save(path)
        gained.append(dataclasses.replace(record, image_path=path))
    write_cameras_json(root / "train.json", gained)
    return root


@pytest.fixture(scope="module")
def gained_runs(rendered_scene, gained_scene, tmp_path_factory):
    """The gained scene trained 400 steps (about 67 passes): "off" without exposure compensation,
    "free" with it and no weight decay (the official free transforms), "default" with the default
    weight decay (0.1); rates 0.05 -> 0.005 (the official 0.01 -> 0.001 are sized for 30,000 steps)."""
    runs = {}
    for name, on, weight_decay in (("off", False, 0.0), ("free", True, 0.0), ("default", True, None)):
        section = {"learning-rate": 0.05, "learning-rate-final": 0.005}
        if weight_decay is not None:
            section["weight-decay"] = weight_decay
        config = camera_config(rendered_scene, tmp_path_factory.mktemp("gained_run"), False, **{
            "exposure-compensation": on, "num-iterations": 400, "val-interval": 400,
            "train-dataset-json-path": str(gained_scene / "train.json"), "exposure-compensation-config": section})
        runs[name] = (config, train(config))
    return runs


def _fitted_gains(run, gained_scene, rendered_scene) -> list[tuple[str, float, float, float, float]]:
    """Per training image of `run`: (name, true gain g, least-squares gain of the mapped true
    colours c (sum (A c + b) . c / sum c . c), mean relative error of the mapped colours against
    g c, the same error of the identity)."""
    config, _ = run
    transforms = read_exposure_json(config.output_model_dir / "exposure.json")
    truths = read_cameras_json(rendered_scene / "true_train.json")[:6]
    rows = []
    for index, record in enumerate(read_cameras_json(gained_scene / "train.json")):
        fitted = transforms[record.image_path.name]
        gain = GAINS[index % len(GAINS)]
        colours = np.asarray(Image.open(truths[index].image_path), dtype=np.float64).reshape(-1, 3) / 255.0
        mapped = colours @ fitted[:, :3].T + fitted[:, 3]
        fitted_gain = (mapped * colours).sum() / (colours * colours).sum()
        relative = np.abs(mapped - colours * gain).mean() / np.abs(colours * gain).mean()
        identity_relative = np.abs(colours - colours * gain).mean() / np.abs(colours * gain).mean()
        rows.append((record.image_path.name, gain, fitted_gain, relative, identity_relative))
    return rows


def test_training_recovers_each_image_gain(gained_runs, gained_scene, rendered_scene):
    """Without weight decay each image's fitted transform, applied to the image's true colours c,
    acts as its gain g: the least-squares gain of the mapped colours within 5 % of g, and the
    mapped colours within 5 % (mean relative) of g c. The matrix entries alone are not compared:
    the demo's colours are nearly grey, so only A's action on them is determined (the per-channel
    gains are off by up to 6 % in a 400-step run where that action is within 3 %)."""
    for name, gain, fitted_gain, relative, identity_relative in _fitted_gains(gained_runs["free"], gained_scene,
                                                                              rendered_scene):
        assert fitted_gain == pytest.approx(gain, rel=0.05), name
        assert relative < 0.05, (name, relative)
        assert gain == 1.0 or identity_relative > 0.15  # the check tells a learnt gain from none


def test_the_default_weight_decay_pulls_the_gains_slightly_towards_one(gained_runs, gained_scene, rendered_scene):
    """With the default weight decay each fitted gain lies between the true gain and 1 (to 0.02),
    within 10 % of the true gain and more than half of the way from 1 to it (measured: 0.83 and
    0.85 for 0.8, 1.17 for 1.2; without weight decay 0.79-0.81 and 1.20)."""
    for name, gain, fitted_gain, _, _ in _fitted_gains(gained_runs["default"], gained_scene, rendered_scene):
        assert min(gain, 1.0) - 0.02 <= fitted_gain <= max(gain, 1.0) + 0.02, (name, gain, fitted_gain)
        assert fitted_gain == pytest.approx(gain, rel=0.10), name
        assert abs(fitted_gain - 1.0) >= 0.5 * abs(gain - 1.0), name


@pytest.mark.parametrize("run", ["free", "default"])
def test_compensation_raises_val_psnr_on_images_of_varying_exposure(gained_runs, run):
    without, with_compensation = gained_runs["off"][1].evaluation.psnr, gained_runs[run][1].evaluation.psnr
    # Measured 41.9 (free) and 34.8 (default) against 25.0 dB: without it the scene averages the
    # exposures. On these exact synthetic gains the weight decay costs PSNR; on real scenes it gains
    # (BENCHMARKS.md), where the free transforms take over part of the scene's colours.
    assert with_compensation > without + 3.0, (with_compensation, without)
