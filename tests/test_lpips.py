"""LPIPS (AlexNet v0.1) in plain torch, from one local weights file."""
from __future__ import annotations

import pytest
import torch
from lpips_reference import random_lpips_weights, reference_lpips, write_random_lpips_weights

from taichi_3dgs.lpips import expected_shapes, load_lpips


def image_pair(seed: int, height: int = 67, width: int = 90, noise: float = 0.1):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(height, width, 3, generator=g)
    return image, (image + noise * torch.randn(image.shape, generator=g)).clamp(0.0, 1.0)


@pytest.mark.parametrize("size", [(31, 31), (67, 90), (120, 64)])
def test_matches_the_layer_by_layer_reference_with_random_weights(tmp_path, size):
    path = write_random_lpips_weights(tmp_path / "weights.pt", seed=1)
    lpips = load_lpips(path)
    for noise in (0.05, 1.0):
        image, other = image_pair(2, *size, noise=noise)
        value = float(lpips(image, other))
        assert value > 0.0
        assert value == pytest.approx(reference_lpips(random_lpips_weights(seed=1), image, other), rel=1e-5)


def test_distance_is_zero_for_identical_images_symmetric_and_grows_with_noise(tmp_path):
    lpips = load_lpips(write_random_lpips_weights(tmp_path / "weights.pt"))
    image, slightly = image_pair(3, noise=0.02)
    _, very = image_pair(3, noise=0.3)
    assert float(lpips(image, image)) == 0.0
    assert float(lpips(image, slightly)) == pytest.approx(float(lpips(slightly, image)), rel=1e-6)
    assert float(lpips(image, very)) > float(lpips(image, slightly)) > 0.0


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=rf"{tmp_path / 'alex.pt'}: LPIPS weights file not found; expected "
                                                r"the LPIPS AlexNet weights file that tools/make_lpips_weights.py"):
        load_lpips(tmp_path / "alex.pt")


def test_malformed_files_are_refused_naming_the_file_and_the_key(tmp_path):
    path = tmp_path / "weights.pt"
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=rf"{path}: not a torch state dict"):
        load_lpips(path)
    torch.save([1, 2], path)
    with pytest.raises(ValueError, match=rf"{path}: holds a list, not a state dict"):
        load_lpips(path)
    weights = random_lpips_weights()
    del weights["lin2.model.1.weight"]
    torch.save(weights, path)
    with pytest.raises(ValueError, match=rf"{path}: missing key 'lin2.model.1.weight' \(a tensor of shape "
                                         r"\[1, 384, 1, 1\]\)"):
        load_lpips(path)
    weights = random_lpips_weights()
    weights["features.3.weight"] = weights["features.3.weight"][:, :32]
    torch.save(weights, path)
    with pytest.raises(ValueError, match=r"key 'features.3.weight' is torch.float32 of shape \[192, 32, 5, 5\]; "
                                         r"expected a float tensor of shape \[192, 64, 5, 5\]"):
        load_lpips(path)
    weights = random_lpips_weights()
    weights["features.0.bias"][5] = float("nan")
    torch.save(weights, path)
    with pytest.raises(ValueError, match=r"key 'features.0.bias' holds NaN or infinite values"):
        load_lpips(path)


def test_the_file_layout_is_torchvisions_alexnet_features_and_the_lpips_linear_layers():
    shapes = expected_shapes()
    assert shapes["features.0.weight"] == (64, 3, 11, 11) and shapes["features.10.bias"] == (256,)
    assert [shapes[f"lin{layer}.model.1.weight"][1] for layer in range(5)] == [64, 192, 384, 256, 256]
    assert set(shapes) == set(random_lpips_weights())


def test_images_of_other_shapes_or_too_small_are_refused(tmp_path):
    lpips = load_lpips(write_random_lpips_weights(tmp_path / "weights.pt"))
    with pytest.raises(ValueError, match=r"expected two \[H, W, 3\] images of one shape"):
        lpips(torch.zeros(40, 40, 3), torch.zeros(40, 41, 3))
    with pytest.raises(ValueError, match=r"LPIPS: LPIPS needs images of at least 31x31 px \(AlexNet's relu5\), "
                                         r"got 30x40 px"):
        lpips(torch.zeros(40, 30, 3), torch.zeros(40, 30, 3))
