"""GaussianModel: initialisation from a point cloud as the official code, warm start, round trips."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from taichi_3dgs.data.point_cloud import PointCloud, write_point_cloud
from taichi_3dgs.scene.model import GaussianModel, load_initial_model
from taichi_3dgs.scene.parquet import read_scene_parquet, write_scene_parquet
from taichi_3dgs.scene.ply import write_ply


def random_cloud(n: int = 200, seed: int = 0, with_rgb: bool = True) -> PointCloud:
    rng = np.random.default_rng(seed)
    xyz = rng.normal(size=(n, 3)).astype(np.float32)
    rgb = rng.integers(0, 256, size=(n, 3), dtype=np.uint8) if with_rgb else None
    return PointCloud(xyz=xyz, rgb=rgb)


def test_point_cloud_init_follows_the_official_create_from_pcd():
    cloud = random_cloud()
    model = GaussianModel.from_point_cloud(cloud)
    # SH DC from RGB: (rgb / 255 - 0.5) / C0 (official RGB2SH); other bands zero.
    expected_dc = (cloud.rgb.astype(np.float64) / 255.0 - 0.5) / 0.28209479177387814
    np.testing.assert_allclose(model.sh_dc[:, 0].detach().numpy(), expected_dc, rtol=1e-6, atol=1e-6)
    assert float(model.sh_rest.abs().max()) == 0.0
    # Isotropic log-scale: log(sqrt(mean squared distance to the 3 nearest other points)), brute force.
    d2 = ((cloud.xyz[:, None, :].astype(np.float64) - cloud.xyz[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    expected_scale = np.log(np.sqrt(np.sort(d2, axis=1)[:, :3].mean(axis=1)))
    np.testing.assert_allclose(model.log_scales.detach().numpy(), np.repeat(expected_scale[:, None], 3, 1),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(model.quats.detach().numpy(), np.tile([1.0, 0, 0, 0], (200, 1)))
    np.testing.assert_allclose(torch.sigmoid(model.opacity_logits).detach().numpy(), 0.1, rtol=1e-6)
    np.testing.assert_array_equal(model.means.detach().numpy(), cloud.xyz)
    assert model.color_activation == "linear" and model.active_sh_degree == 0


def test_cloud_without_colours_gets_seeded_random_colours():
    cloud = random_cloud(with_rgb=False)
    a = GaussianModel.from_point_cloud(cloud, seed=3).sh_dc.detach()
    b = GaussianModel.from_point_cloud(cloud, seed=3).sh_dc.detach()
    rgb = a[:, 0] * 0.28209479177387814 + 0.5
    assert torch.equal(a, b)
    assert float(rgb.min()) >= 0.0 and float(rgb.max()) <= 1.0 and float(rgb.std()) > 0.2


def test_duplicated_points_get_the_official_minimum_scale():
    xyz = np.zeros((6, 3), dtype=np.float32)
    xyz[5] = [1.0, 0.0, 0.0]  # a cloud of only duplicates has zero extent and is refused
    model = GaussianModel.from_point_cloud(PointCloud(xyz=xyz, rgb=None))
    np.testing.assert_allclose(model.log_scales.detach().numpy()[:5], np.log(np.sqrt(1e-7)), rtol=1e-5)


def test_a_cloud_of_identical_points_is_refused():
    with pytest.raises(ValueError, match="all 5 points are identical"):
        GaussianModel.from_point_cloud(PointCloud(xyz=np.ones((5, 3), dtype=np.float32), rgb=None))


def test_plain_point_cloud_parquet_is_initialised(tmp_path):
    path = tmp_path / "points.parquet"
    cloud = random_cloud(50)
    write_point_cloud(path, cloud)
    model = load_initial_model(path)
    np.testing.assert_array_equal(model.means.detach().numpy(), cloud.xyz)
    np.testing.assert_allclose(torch.sigmoid(model.opacity_logits).detach().numpy(), 0.1, rtol=1e-6)


def test_extra_points_follow_the_cloud_with_their_colours_and_scales_among_all_points():
    cloud, extra = random_cloud(with_rgb=False), random_cloud(60, seed=1)
    model = GaussianModel.from_point_cloud(cloud, seed=3, extra_points=extra)
    alone = GaussianModel.from_point_cloud(cloud, seed=3)
    assert model.num_gaussians == 260
    np.testing.assert_array_equal(model.means.detach().numpy(), np.concatenate([cloud.xyz, extra.xyz]))
    assert torch.equal(model.sh_dc[:200], alone.sh_dc)  # the cloud's random colours are unchanged
    expected_dc = (extra.rgb.astype(np.float64) / 255.0 - 0.5) / 0.28209479177387814
    np.testing.assert_allclose(model.sh_dc[200:, 0].detach().numpy(), expected_dc, rtol=1e-6, atol=1e-6)
    points = np.concatenate([cloud.xyz, extra.xyz]).astype(np.float64)
    d2 = ((points[:, None, :] - points[None]) ** 2).sum(-1)
    np.fill_diagonal(d2, np.inf)
    expected_scale = np.log(np.sqrt(np.sort(d2, axis=1)[:, :3].mean(axis=1)))
    np.testing.assert_allclose(model.log_scales[:, 0].detach().numpy(), expected_scale, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(torch.sigmoid(model.opacity_logits).detach().numpy(), 0.1, rtol=1e-6)


def test_extra_points_without_colours_are_refused():
    with pytest.raises(ValueError, match="extra points: have no colours"):
        GaussianModel.from_point_cloud(random_cloud(), extra_points=random_cloud(5, with_rgb=False))


def test_load_initial_model_adds_the_extra_points_of_the_cloud_it_read(tmp_path):
    path = tmp_path / "points.parquet"
    write_point_cloud(path, random_cloud(50))
    received = []

    def shifted(cloud: PointCloud) -> PointCloud:
        received.append(cloud)
        return PointCloud(cloud.xyz[:10] + 100.0, cloud.rgb[:10])

    model = load_initial_model(path, extra_points=shifted)
    assert received == [random_cloud(50)]
    np.testing.assert_array_equal(model.means[50:].detach().numpy(), random_cloud(50).xyz[:10] + 100.0)


def trained_model(seed: int = 0) -> GaussianModel:
    model = GaussianModel.from_point_cloud(random_cloud(40, seed))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    model.active_sh_degree = 3
    return model


def test_trained_scene_parquet_is_loaded_not_reinitialised(tmp_path):
    model = trained_model()
    path = tmp_path / "scene.parquet"
    write_scene_parquet(path, model.to_scene())
    loaded = load_initial_model(path)
    for name, param in model.parameter_dict().items():
        assert torch.equal(getattr(loaded, name), param), name
    assert loaded.active_sh_degree == 3


def test_extra_points_for_a_warm_start_are_refused_naming_the_file(tmp_path):
    path = tmp_path / "scene.ply"
    write_ply(path, trained_model().to_scene())
    with pytest.raises(ValueError, match=r"scene\.ply: is a trained scene.*initial-points"):
        load_initial_model(path, extra_points=lambda cloud: cloud)


def test_ply_warm_start_keeps_the_parameters(tmp_path):
    model = trained_model(1)
    path = tmp_path / "scene.ply"
    write_ply(path, model.to_scene())
    loaded = load_initial_model(path)
    assert torch.equal(loaded.means, model.means)
    assert torch.equal(loaded.sh_coeffs, model.sh_coeffs)


@pytest.mark.parametrize("suffix", [".parquet", ".ply"])
def test_warm_start_and_to_scene_keep_the_antialiased_flag(tmp_path, suffix):
    model = trained_model(3)
    assert model.antialiased is False  # a point cloud has not been trained with any filter
    model.antialiased = True
    path = tmp_path / f"scene{suffix}"
    (write_ply if suffix == ".ply" else write_scene_parquet)(path, model.to_scene())
    loaded = load_initial_model(path)
    assert loaded.antialiased is True and loaded.to_scene().antialiased is True


def test_to_scene_zeroes_bands_above_the_active_degree(tmp_path):
    model = trained_model(2)
    model.active_sh_degree = 1
    scene = model.to_scene()
    assert scene.sh_degree == 1
    assert float(scene.sh_coeffs[:, 4:].abs().max()) == 0.0
    assert torch.equal(scene.sh_coeffs[:, :4], model.sh_coeffs[:, :4].detach())
    write_scene_parquet(tmp_path / "s.parquet", scene)
    assert read_scene_parquet(tmp_path / "s.parquet").sh_degree == 1


def test_model_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="quats has shape"):
        GaussianModel(torch.zeros(3, 3), torch.zeros(2, 4), torch.zeros(3, 3), torch.zeros(3), torch.zeros(3, 16, 3))
