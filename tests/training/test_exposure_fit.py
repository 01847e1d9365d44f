"""Colour transforms fitted to the scene by least squares (`exposure-compensation-config.fit-interval`).

References: numpy's least-squares solution; the true gain and offset of an image whose target is
the scene's own render times them (`camera_scene.rendered_scene`); the identity, which every image
the scene already matches must keep bit for bit.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from camera_scene import GAIN, GAIN_IMAGE, OFFSET, camera_config, demo, rendered_scene  # noqa: F401  (fixtures)

from taichi_3dgs.training.config import ConfigError, ExposureCompensationConfig, parse_train_config
from taichi_3dgs.training.exposure_file import read_exposure_json
from taichi_3dgs.training.exposure_transforms import ExposureTransforms, fit_colour_transform
from taichi_3dgs.training.trainer import train


def test_training_with_exposure_fits_corrects_the_gained_image_and_no_other(rendered_scene, tmp_path):
    """rendered_scene: its images are the scene's renders from the true cameras; one image
    (GAIN_IMAGE) has a colour gain and offset, one camera (PERTURBED_CAMERA) a pose error, which no
    colour transform explains. One fit after step 10."""
    config = camera_config(rendered_scene, tmp_path / "out", False, **{
        "exposure-compensation": True, "num-iterations": 11, "val-interval": 11,
        "exposure-compensation-config": {"fit-interval": 10, "keep-mean-identity": False, "learning-rate": 1.0}})
    train(config)
    exposure = list(read_exposure_json(config.output_model_dir / "exposure.json").values())
    for index, transform in enumerate(exposure):
        if index != GAIN_IMAGE:  # the huge Adam rate would move them, were Adam stepped
            assert np.array_equal(transform, np.eye(3, 4)), index
    # The photo is the render times GAIN plus OFFSET, rounded to 8 bits.
    np.testing.assert_allclose(exposure[GAIN_IMAGE], np.concatenate([np.diag(GAIN), OFFSET[:, None]], axis=1),
                               rtol=0, atol=0.02)


def test_fit_colour_transform_matches_numpy_least_squares_for_both_models():
    rng = np.random.default_rng(2)
    render = torch.tensor(rng.uniform(0, 1, size=(9, 7, 3)), dtype=torch.float32)
    noisy = torch.tensor(rng.uniform(0, 1, size=(9, 7, 3)), dtype=torch.float32)
    colours, wanted = render.double().numpy().reshape(-1, 3), noisy.double().numpy().reshape(-1, 3)
    identity_error = float(((colours - wanted) ** 2).mean())
    affine = fit_colour_transform(render, noisy, model="affine")
    design = np.concatenate([colours, np.ones((63, 1))], axis=1)
    expected, residual = np.linalg.lstsq(design, wanted, rcond=None)[:2]
    np.testing.assert_allclose(affine.transform.numpy(), expected.T, rtol=0, atol=1e-5)
    assert affine.error == pytest.approx(residual.sum() / 189, rel=1e-6)
    assert affine.identity_error == pytest.approx(identity_error, rel=1e-9)

    gain_offset = fit_colour_transform(render, noisy)  # the default model
    expected = np.zeros((3, 4))
    errors = 0.0
    for channel in range(3):  # np.polyfit: a line through each channel's (render, photo) pairs
        slope, intercept = np.polyfit(colours[:, channel], wanted[:, channel], 1)
        expected[channel, channel], expected[channel, 3] = slope, intercept
        errors += float(((slope * colours[:, channel] + intercept - wanted[:, channel]) ** 2).sum())
    np.testing.assert_allclose(gain_offset.transform.numpy(), expected, rtol=0, atol=1e-5)
    assert gain_offset.error == pytest.approx(errors / 189, rel=1e-6)
    assert affine.error <= gain_offset.error <= identity_error


@pytest.mark.parametrize("model, transform", [
    ("affine", [[0.8, 0.1, 0.0, 0.05], [0.0, 1.2, 0.0, -0.02], [0.1, 0.0, 0.9, 0.0]]),
    ("gain-offset", [[0.8, 0.0, 0.0, 0.05], [0.0, 1.2, 0.0, -0.02], [0.0, 0.0, 0.9, 0.0]]),
])
def test_fit_colour_transform_recovers_an_exact_transform_outside_the_mask(model, transform):
    render = torch.tensor(np.random.default_rng(4).uniform(0, 1, size=(9, 7, 3)), dtype=torch.float32)
    transform = torch.tensor(transform)
    photo = render @ transform[:, :3].T + transform[:, 3]
    mask = torch.ones(9, 7, dtype=torch.bool)
    mask[:3] = False
    photo[:3] = 5.0  # ignored pixels
    exact = fit_colour_transform(render, photo, mask, model)
    np.testing.assert_allclose(exact.transform.numpy(), transform.numpy(), rtol=0, atol=1e-5)
    assert exact.gain == pytest.approx(1.0, abs=1e-6)


def test_exposure_fit_keeps_the_identity_below_the_gain_and_then_the_mean_at_the_identity():
    rng = np.random.default_rng(3)
    renders = [torch.tensor(rng.uniform(0, 1, size=(8, 8, 3)), dtype=torch.float32) for _ in range(3)]
    photos = [renders[0] + 0.01 * torch.tensor(rng.normal(size=(8, 8, 3)), dtype=torch.float32),  # noise only
              renders[1] * 0.5 + 0.1, renders[2] * 1.5]

    def fitted(keep_mean_identity: bool) -> torch.Tensor:
        transforms = ExposureTransforms(["a", "b", "c"], ExposureCompensationConfig(
            fit_interval=1, keep_mean_identity=keep_mean_identity), 10, "cpu")
        gains = transforms.fit(lambda index: (renders[index], photos[index], None))
        assert gains[0] < 0.5 < min(gains[1:])
        return transforms.transforms.detach()

    free = fitted(False)
    assert torch.equal(free[0], torch.eye(3, 4))
    np.testing.assert_allclose(free[1].numpy(), 0.5 * np.eye(3, 4) + np.array([[0, 0, 0, 0.1]] * 3), atol=1e-5)
    np.testing.assert_allclose(free[2].numpy(), 1.5 * np.eye(3, 4), atol=1e-5)
    centred = fitted(True)
    np.testing.assert_allclose(centred.mean(dim=0).numpy(), np.eye(3, 4), atol=1e-6)
    np.testing.assert_allclose((centred - free).numpy(), np.broadcast_to((centred - free)[0].numpy(), (3, 3, 4)),
                               atol=1e-6)  # one shift for all


def test_fit_min_gain_must_be_below_one(tmp_path):
    with pytest.raises(ConfigError, match=r"fit-min-gain.*in \[0, 1\)"):
        parse_train_config({"exposure-compensation-config": {"fit-min-gain": 1.0}}, "t.yaml", tmp_path)
