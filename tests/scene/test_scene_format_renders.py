"""Rendered effect of each scene format: a real trained scene (graphdeco's 7k-iteration PLY,
every third Gaussian to keep SOG's palette fast) rendered before and after a round trip through
the format, from three cameras around its centre. Per-value tolerances cannot see a swapped axis
or a wrong activation that stays in range; the images can, so each format must keep the PSNR
between the two renders above a bound, and deliberately broken decodings must fall below it.

PSNR (dB) measured here at 96 x 96 (CPU): .glb 144 (float32), .sog 53, .compressed.ply 50,
.spz 37, .splat 32 (DC colour only); the broken decodings 9 to 32. README "Scene formats"."""
from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import dataset_path

from taichi_3dgs.backend import torch_device
from taichi_3dgs.scene.io import read_scene, write_scene
from taichi_3dgs.scene.ply import read_ply
from taichi_3dgs.scene.quantisation import sh_axis_signs
from taichi_3dgs.viewer.camera_paths import look_at, pinhole_intrinsics
from taichi_3dgs.viewer.rendering import render_image

_SIZE = 96
# Lowest PSNR each format's round trip may give (a few dB under the measured values).
MIN_PSNR = {".glb": 80.0, ".sog": 45.0, ".compressed.ply": 45.0, ".spz": 34.0, ".splat": 28.0}


@pytest.fixture(scope="module")
def trained_scene():
    path = dataset_path("3dgs_trained_ply") / "point_cloud" / "iteration_7000" / "point_cloud.ply"
    scene = read_ply(path)
    keep = torch.arange(0, scene.num_gaussians, 3)
    return replace(scene, **{name: getattr(scene, name)[keep] for name in
                             ("means", "quats", "log_scales", "opacity_logits", "sh_coeffs")})


@pytest.fixture(scope="module")
def render(trained_scene):
    """Render a scene from three cameras 1.5 x the 80th-percentile radius from the median
    centre, 120 degrees apart, slightly above (the scene has no cameras of its own)."""
    means = trained_scene.means.double().numpy()
    centre = np.median(means, axis=0)
    radius = 1.5 * np.percentile(np.linalg.norm(means - centre, axis=1), 80)
    K = pinhole_intrinsics(_SIZE, _SIZE, 60.0)
    viewmats = [np.linalg.inv(look_at(centre + radius * np.array([np.cos(a), 0.3, np.sin(a)]),
                                      centre, np.array([0.0, -1.0, 0.0])))
                for a in np.radians([0.0, 120.0, 240.0])]

    def images(scene):
        scene = scene.to(torch_device())
        return torch.stack([render_image(scene, v, K, _SIZE, _SIZE).clamp(0, 1).cpu()
                            for v in viewmats])
    return images


@pytest.fixture(scope="module")
def reference(render, trained_scene):
    images = render(trained_scene)
    assert images.mean() > 0.05 and images.std() > 0.05  # the cameras see the scene
    return images


def psnr(a, b):
    return float(-10.0 * torch.log10(((a - b) ** 2).mean()))


@pytest.mark.parametrize("suffix", list(MIN_PSNR))
def test_round_trip_renders_like_the_scene(render, reference, trained_scene, tmp_path, suffix):
    write_scene(tmp_path / f"scene{suffix}", trained_scene)
    value = psnr(render(read_scene(tmp_path / f"scene{suffix}")), reference)
    print(f"{suffix}: PSNR {value:.1f} dB after the round trip")
    assert value >= MIN_PSNR[suffix]


def _sh_in_the_wrong_frame(scene):  # positions turned to glTF's frame, SH coefficients not
    signs = torch.from_numpy(sh_axis_signs((-1, -1, 1))).float()
    return replace(scene, sh_coeffs=scene.sh_coeffs * signs[None, :, None])


def _quaternion_in_xyzw_order(scene):  # w, x, y, z read as x, y, z, w
    return replace(scene, quats=scene.quats[:, [3, 0, 1, 2]])


def _y_and_z_swapped(scene):  # a reflection: positions and rotations mirrored together
    return replace(scene, means=scene.means[:, [0, 2, 1]],
                   quats=scene.quats[:, [0, 1, 3, 2]] * torch.tensor([-1.0, 1.0, 1.0, 1.0]))


def _opacity_stored_without_sigmoid(scene):  # opacity(1 / (1 + e^-x)) read as a logit
    return replace(scene, opacity_logits=torch.sigmoid(scene.opacity_logits))


@pytest.mark.parametrize("breakage", [_sh_in_the_wrong_frame, _quaternion_in_xyzw_order,
                                      _y_and_z_swapped, _opacity_stored_without_sigmoid])
def test_a_broken_decoding_falls_below_the_bounds(render, reference, trained_scene, breakage):
    value = psnr(render(breakage(trained_scene)), reference)
    print(f"{breakage.__name__}: PSNR {value:.1f} dB")
    # Below every format that keeps the SH bands (.splat drops them: its bound is lower).
    assert value < min(bound for suffix, bound in MIN_PSNR.items() if suffix != ".splat")
