"""GaussianScene.validate names the offending field; to() moves every tensor."""
import dataclasses

import pytest
import torch
from synthetic_scenes import random_scene

from taichi_3dgs.scene.gaussians import TENSOR_FIELDS


def test_valid_scene_passes_validation_and_counts_gaussians():
    scene = random_scene(num_gaussians=7, sh_degree=1)
    scene.validate()
    assert scene.num_gaussians == 7


def test_to_moves_every_tensor_and_keeps_scalars():
    scene = random_scene(num_gaussians=3, sh_degree=2, color_activation="sigmoid", antialiased=True)
    moved = scene.to("meta")
    for field in TENSOR_FIELDS:
        assert getattr(moved, field).device.type == "meta"
        assert getattr(scene, field).device.type == "cpu"
    assert (moved.sh_degree, moved.color_activation, moved.antialiased) == (2, "sigmoid", True)


@pytest.mark.parametrize("field, value, message", [
    ("quats", torch.zeros(5, 3), r"quats: expected shape \[5, 4\]"),
    ("opacity_logits", torch.zeros(5, 1), r"opacity_logits: expected shape \[5\]"),
    ("sh_coeffs", torch.zeros(5, 9, 3), r"sh_coeffs: expected shape \[5, 16, 3\]"),
    ("log_scales", torch.zeros(5, 3, dtype=torch.float64), "log_scales: expected dtype"),
    ("sh_degree", 4, "sh_degree: expected an int 0..3"),
    ("color_activation", "relu", "color_activation: expected one of"),
    ("antialiased", "true", "antialiased: expected True or False, got 'true'"),
])
def test_validate_names_the_bad_field(field, value, message):
    scene = dataclasses.replace(random_scene(num_gaussians=5), **{field: value})
    with pytest.raises(ValueError, match=message):
        scene.validate()


def test_validate_names_field_and_row_of_a_nan():
    scene = random_scene(num_gaussians=5)
    scene.means[3, 1] = float("nan")
    with pytest.raises(ValueError, match="means: non-finite value in row 3"):
        scene.validate()


def test_validate_rejects_non_zero_bands_above_sh_degree():
    scene = random_scene(num_gaussians=5, sh_degree=1)
    scene.sh_coeffs[2, 4, 0] = 0.1  # first band-2 coefficient
    with pytest.raises(ValueError, match="sh_coeffs: row 2 has non-zero coefficients in bands "
                                         "above sh_degree = 1"):
        scene.validate()
