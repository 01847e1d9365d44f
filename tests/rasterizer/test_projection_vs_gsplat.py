"""`project_gaussians` against gsplat's pure-torch `_fully_fused_projection` (means2d, conics,
depths, compensations) and against the reference's radius rule (radii), on a random scene and on
Gaussians of the real garden scene.

cx = W/2 and cy = H/2 in these cameras: there gsplat's J clamp (asymmetric around the principal
point) equals the official +-1.3 tan_fov clamp the rasterizer implements.
"""
from __future__ import annotations

import dataclasses

import pytest
import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci

from benchmarks.garden_scene import load_garden_scene
from conftest import dataset_path
from reference import centred, project_reference, random_scene
from taichi_3dgs import RasterizerConfig
from taichi_3dgs.rasterizer import project_gaussians

CONFIG = dataclasses.replace(RasterizerConfig(), antialiased=True)


def _random():
    return centred(random_scene(500, 162, 105, seed=21, log_scale_range=(-6.0, -0.5)))


def _garden():
    path = dataset_path("gsplat_test_garden") / "test_garden.npz"
    return centred(load_garden_scene(path, n_points=20000))


SCENES = {"random": _random, "garden": _garden}


@pytest.fixture(scope="module", params=list(SCENES))
def projections(request):
    """(scene, rasterizer projection, gsplat outputs in float64, reference projection)."""
    scene = SCENES[request.param]()
    args = (scene["means"], scene["quats"], scene["log_scales"], scene["viewmat"], scene["K"], scene["width"],
            scene["height"])
    proj = project_gaussians(*args, CONFIG)
    covars, _ = _quat_scale_to_covar_preci(scene["quats"].double(), scene["log_scales"].double().exp(),
                                           compute_preci=False)
    _, means2d, depths, conics, comps = _fully_fused_projection(
        scene["means"].double(), covars, scene["viewmat"].double()[None], scene["K"].double()[None],
        scene["width"], scene["height"], eps2d=CONFIG.eps2d, near_plane=CONFIG.near_plane,
        far_plane=CONFIG.far_plane, calc_compensations=True)
    expected = dict(means2d=means2d[0], depths=depths[0], conics=conics[0], compensations=comps[0])
    return scene, proj, expected, project_reference(*args, CONFIG)


def test_projection_outputs_are_float32_with_documented_shapes(projections):
    scene, proj, _, _ = projections
    n = len(scene["means"])
    for name, shape in dict(means2d=(n, 2), conics=(n, 3), depths=(n,), compensations=(n,)).items():
        value = getattr(proj, name)
        assert value.shape == shape and value.dtype == torch.float32, name
    assert proj.radii.shape == (n,) and proj.radii.dtype == torch.int32


def test_visible_gaussians_exist(projections):
    _, proj, _, ref = projections
    assert (ref.radii > 0).sum() > 100
    assert (ref.radii == 0).sum() > 10  # culled ones too


def test_means2d_match_gsplat(projections):
    _, proj, expected, ref = projections
    visible = ref.radii > 0
    torch.testing.assert_close(proj.means2d[visible].double(), expected["means2d"][visible], rtol=1e-5, atol=1e-3)


def test_depths_match_gsplat(projections):
    _, proj, expected, ref = projections
    visible = ref.radii > 0
    torch.testing.assert_close(proj.depths[visible].double(), expected["depths"][visible], rtol=1e-5, atol=1e-6)


def test_conics_match_gsplat(projections):
    _, proj, expected, ref = projections
    visible = ref.radii > 0
    actual, wanted = proj.conics[visible].double(), expected["conics"][visible]
    # relative to each conic's size (the off-diagonal term may be near zero); float32 loses
    # digits in det = ac - b^2 of thin Gaussians (seen: 6e-5 on the random scene)
    scale = wanted.abs().amax(dim=1, keepdim=True)
    assert ((actual - wanted).abs() / scale).max() < 5e-4


def test_compensations_match_gsplat(projections):
    _, proj, expected, ref = projections
    visible = ref.radii > 0
    # sqrt(det_orig / det): det_orig of thin Gaussians cancels in float32 (seen: 4e-5)
    torch.testing.assert_close(proj.compensations[visible].double(), expected["compensations"][visible],
                               rtol=1e-3, atol=1e-4)


def test_radii_follow_the_three_sigma_rule(projections):
    scene, proj, _, ref = projections
    cov = ref.cov2d
    mid = 0.5 * (cov[:, 0, 0] + cov[:, 1, 1])
    det = cov[:, 0, 0] * cov[:, 1, 1] - cov[:, 0, 1] ** 2
    extent = 3.0 * torch.sqrt(mid + torch.sqrt(torch.clamp(mid * mid - det, min=0.0)))
    # float32 may decide differently only where 3 sqrt(lambda) is within float error of an
    # integer, or where the square's edge is within float error of the image border
    ambiguous = (extent - extent.round()).abs() < 1e-4 * extent
    r = torch.ceil(extent)
    u, v = ref.means2d[:, 0], ref.means2d[:, 1]
    edges = torch.stack([u + r, u - r - scene["width"], v + r, v - r - scene["height"]], -1)
    ambiguous |= edges.abs().amin(dim=1) < 1e-3
    mismatch = proj.radii.long() != ref.radii
    assert not (mismatch & ~ambiguous).any(), torch.nonzero(mismatch & ~ambiguous)[:5]


def test_compensations_are_one_when_not_antialiased(projections):
    scene, _, _, ref = projections
    plain = dataclasses.replace(CONFIG, antialiased=False)
    proj = project_gaussians(scene["means"], scene["quats"], scene["log_scales"], scene["viewmat"], scene["K"],
                             scene["width"], scene["height"], plain)
    visible = proj.radii > 0  # culled ones are documented as 0
    assert (proj.compensations[visible] == 1).all()


def test_visible_ids_list_the_gaussians_with_a_radius():
    scene = random_scene(300, 162, 105, seed=1)
    proj = project_gaussians(scene["means"], scene["quats"], scene["log_scales"], scene["viewmat"], scene["K"],
                             scene["width"], scene["height"])
    assert proj.visible_ids.dtype == torch.int64
    assert torch.equal(proj.visible_ids, torch.nonzero(proj.radii > 0).flatten())
    assert 0 < len(proj.visible_ids) < 300  # the scene has culled Gaussians, so the list is a real subset
