"""The render warnings: which views are named and how, and the extent a scene's scales are
compared with (the cameras' distance, so one Gaussian seen from afar is not absurd)."""
import math
import warnings

import numpy as np
import pytest
import torch

from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.viewer.camera_paths import look_at
from taichi_3dgs.viewer.geometry import invert_rigid
from taichi_3dgs.viewer.render_warnings import MAX_LISTED_VIEWS, warn_blind_views, warn_degenerate_scene


def _messages(call, *args):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call(*args)
    return [str(warning.message) for warning in caught]


def _one_gaussian(log_scale):
    return GaussianScene(means=torch.zeros(1, 3), quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]),
                         log_scales=torch.full((1, 3), log_scale), opacity_logits=torch.zeros(1),
                         sh_coeffs=torch.zeros(1, 16, 3), sh_degree=0)


def _viewmat_at(distance):
    return invert_rigid(look_at(np.array([0.0, 0.0, -distance]), np.zeros(3), np.array([0.0, -1.0, 0.0])))


def test_no_view_no_warning():
    assert _messages(warn_blind_views, [], "camera", "val.json") == []


def test_one_view_is_named_in_the_singular():
    assert _messages(warn_blind_views, [4], "frame", "the orbit") == [
        "no Gaussian is visible from frame 4 of the orbit (its render is the background)"]


def test_many_views_are_listed_up_to_the_limit_then_counted():
    indices = list(range(0, 3 * (MAX_LISTED_VIEWS + 5), 3))
    (message,) = _messages(warn_blind_views, indices, "camera", "val.json")
    listed = ", ".join(str(index) for index in indices[:MAX_LISTED_VIEWS])
    assert message == (f"no Gaussian is visible from cameras {listed}, ... ({MAX_LISTED_VIEWS + 5} in all) of "
                       "val.json (their renders are the background)")


def test_a_single_gaussian_seen_from_afar_is_compared_with_the_camera_distance():
    # scene_bounds gives one Gaussian a radius of 1e-6, so its scale of e^0.1 = 1.1 alone would be
    # above 1e6 x the extent; the camera 5 units away makes the extent 5.
    scene = _one_gaussian(0.1)
    assert _messages(warn_degenerate_scene, scene, "one.ply", [_viewmat_at(5.0)]) == []
    (message,) = _messages(warn_degenerate_scene, scene, "one.ply", [])
    assert message.startswith("one.ply: 1 of 1 Gaussians have a scale above 1e+06 x the scene extent 1e-06")


@pytest.mark.parametrize("log_scale, warned", [(math.log(5e6) - 0.01, False), (math.log(5e6) + 0.01, True)])
def test_scale_threshold_is_a_million_times_the_median_camera_distance(log_scale, warned):
    viewmats = [_viewmat_at(distance) for distance in (2.0, 5.0, 400.0)]  # median 5
    messages = _messages(warn_degenerate_scene, _one_gaussian(log_scale), "one.ply", viewmats)
    assert bool(messages) == warned
