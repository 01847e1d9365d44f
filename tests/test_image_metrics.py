"""taichi_3dgs.metrics: PSNR and the official 3DGS SSIM on real photographs."""
import math

import numpy as np
import pytest
import torch
from conftest import dataset_path
from image_metrics_reference import reference_psnr, reference_ssim
from PIL import Image

from taichi_3dgs.metrics import psnr, ssim


@pytest.fixture(scope="module")
def photo_pair():
    """A real 150 x 200 photo and a copy with seeded Gaussian noise (sigma 0.05)."""
    path = dataset_path("colmap_tumbler") / "images_4" / "1.jpg"
    photo = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0
    assert photo.shape == (150, 200, 3)
    noise = np.random.default_rng(0).normal(0.0, 0.05, photo.shape).astype(np.float32)
    return photo, np.clip(photo + noise, 0.0, 1.0)


def test_psnr_of_a_constant_offset_of_0_1_is_20_db():
    gt = torch.full((8, 9, 3), 0.5)
    assert float(psnr(gt + 0.1, gt)) == pytest.approx(20.0, abs=1e-4)


def test_psnr_of_identical_images_is_capped_at_100_db():
    image = torch.rand(5, 6, 3)
    assert float(psnr(image, image)) == pytest.approx(100.0)


def test_psnr_matches_the_float64_definition_on_a_real_photo(photo_pair):
    photo, noisy = photo_pair
    value = float(psnr(torch.from_numpy(noisy), torch.from_numpy(photo)))
    assert value == pytest.approx(reference_psnr(noisy, photo), abs=1e-3)


def test_ssim_matches_an_independent_2d_window_implementation_on_a_real_photo(photo_pair):
    photo, noisy = photo_pair
    value = float(ssim(torch.from_numpy(noisy), torch.from_numpy(photo)))
    expected = reference_ssim(noisy, photo)
    assert 0.3 < expected < 0.95  # noise of this size leaves a clearly imperfect score
    assert value == pytest.approx(expected, abs=1e-5)


def test_ssim_of_identical_images_is_1(photo_pair):
    photo = torch.from_numpy(photo_pair[0])
    assert float(ssim(photo, photo)) == pytest.approx(1.0, abs=1e-6)


def test_ssim_is_differentiable_for_use_in_a_loss(photo_pair):
    photo, noisy = (torch.from_numpy(image) for image in photo_pair)
    pred = noisy.clone().requires_grad_(True)
    (1.0 - ssim(pred, photo)).backward()
    assert pred.grad is not None and math.isfinite(float(pred.grad.abs().sum()))
    assert float(pred.grad.abs().sum()) > 0


def test_metrics_reject_images_of_different_shapes():
    with pytest.raises(ValueError, match=r"\[4, 4, 3\].*\[4, 5, 3\]"):
        ssim(torch.zeros(4, 4, 3), torch.zeros(4, 5, 3))


def test_metrics_reject_empty_images():
    with pytest.raises(ValueError, match="empty"):
        psnr(torch.zeros(0, 4, 3), torch.zeros(0, 4, 3))
