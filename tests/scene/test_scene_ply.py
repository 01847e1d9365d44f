"""Official 3DGS PLY: the real graphdeco output read and written back byte for byte, and errors."""
import numpy as np
import pytest
import torch
from conftest import dataset_path
from plyfile import PlyData, PlyElement
from synthetic_scenes import assert_scenes_identical, random_scene

from taichi_3dgs.scene.parquet import read_scene_parquet, write_scene_parquet
from taichi_3dgs.scene.ply import read_ply, write_ply


@pytest.fixture(scope="module")
def official_ply():
    return dataset_path("3dgs_trained_ply") / "point_cloud" / "iteration_7000" / "point_cloud.ply"


def test_official_ply_reads_9080_gaussians_of_degree_3(official_ply):
    scene = read_ply(official_ply)
    assert scene.num_gaussians == 9080
    assert (scene.sh_degree, scene.color_activation) == (3, "linear")
    scene.validate()


def test_official_ply_values_map_to_the_scene_fields(official_ply):
    vertex = PlyData.read(str(official_ply))["vertex"]
    scene = read_ply(official_ply)
    np.testing.assert_array_equal(scene.means[:, 1].numpy(), vertex["y"])
    np.testing.assert_array_equal(scene.quats[:, 0].numpy(), vertex["rot_0"])  # w, unnormalised
    np.testing.assert_array_equal(scene.opacity_logits.numpy(), vertex["opacity"])
    np.testing.assert_array_equal(scene.log_scales[:, 2].numpy(), vertex["scale_2"])
    np.testing.assert_array_equal(scene.sh_coeffs[:, 0, 2].numpy(), vertex["f_dc_2"])
    # f_rest is channel-major: f_rest_15 is the first higher coefficient of the green channel.
    np.testing.assert_array_equal(scene.sh_coeffs[:, 1, 1].numpy(), vertex["f_rest_15"])
    np.testing.assert_array_equal(scene.sh_coeffs[:, 15, 2].numpy(), vertex["f_rest_44"])
    norms = scene.quats.norm(dim=1)
    assert float(norms.min()) < 0.7 and float(norms.max()) > 1.1  # PROVENANCE: 0.62..1.15


def test_official_ply_written_back_is_byte_identical(official_ply, tmp_path):
    out = tmp_path / "copy.ply"
    write_ply(out, read_ply(official_ply))
    assert out.read_bytes() == official_ply.read_bytes()


def test_official_ply_through_parquet_and_back_is_byte_identical(official_ply, tmp_path):
    scene = read_ply(official_ply)
    write_scene_parquet(tmp_path / "scene.parquet", scene)
    from_parquet = read_scene_parquet(tmp_path / "scene.parquet")
    assert_scenes_identical(from_parquet, scene)
    write_ply(tmp_path / "back.ply", from_parquet)
    assert (tmp_path / "back.ply").read_bytes() == official_ply.read_bytes()


@pytest.mark.parametrize("sh_degree, num_rest", [(0, 0), (1, 9), (2, 24)])
def test_lower_degree_scenes_write_fewer_f_rest_and_read_back_identical(tmp_path, sh_degree,
                                                                         num_rest):
    scene = random_scene(num_gaussians=30, sh_degree=sh_degree)
    path = tmp_path / "low.ply"
    write_ply(path, scene)
    names = [prop.name for prop in PlyData.read(str(path))["vertex"].properties]
    assert sum(name.startswith("f_rest_") for name in names) == num_rest
    assert names[-8:] == ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2",
                          "rot_3"]
    assert_scenes_identical(read_ply(path), scene)


def test_sigmoid_scene_is_refused_pointing_to_the_conversion(tmp_path):
    path = tmp_path / "sigmoid.ply"
    with pytest.raises(ValueError, match="sigmoid_to_linear"):
        write_ply(path, random_scene(num_gaussians=4, color_activation="sigmoid"))
    assert not path.exists()


def _write_vertices(path, names, num_rows=5, nan_at=None):
    vertices = np.zeros(num_rows, dtype=[(name, "<f4") for name in names])
    vertices["rot_0"] = 1.0
    if nan_at is not None:
        vertices[nan_at[0]][nan_at[1]] = np.nan
    PlyData([PlyElement.describe(vertices, "vertex")]).write(str(path))


_OFFICIAL_NAMES = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                   + [f"f_rest_{i}" for i in range(45)]
                   + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2",
                      "rot_3"])


def test_wrong_f_rest_count_names_file_and_expected_counts(tmp_path):
    path = tmp_path / "ten_rest.ply"
    _write_vertices(path, [n for n in _OFFICIAL_NAMES if n not in
                           [f"f_rest_{i}" for i in range(10, 45)]])
    with pytest.raises(ValueError, match=r"ten_rest\.ply: 10 f_rest_\* vertex properties, "
                                         r"expected 0, 9, 24 or 45"):
        read_ply(path)


def test_missing_property_names_file_and_property(tmp_path):
    path = tmp_path / "no_opacity.ply"
    _write_vertices(path, [n for n in _OFFICIAL_NAMES if n != "opacity"])
    with pytest.raises(ValueError, match=r"no_opacity\.ply: vertex property opacity missing"):
        read_ply(path)


def test_nan_names_file_property_and_row(tmp_path):
    path = tmp_path / "nan.ply"
    _write_vertices(path, _OFFICIAL_NAMES, nan_at=(3, "scale_1"))
    with pytest.raises(ValueError, match=r"nan\.ply: vertex property 'scale_1' row 3 is nan"):
        read_ply(path)


def test_truncated_file_is_a_value_error_naming_it(official_ply, tmp_path):
    path = tmp_path / "truncated.ply"
    path.write_bytes(official_ply.read_bytes()[:5000])
    with pytest.raises(ValueError, match=r"truncated\.ply: not a readable PLY file"):
        read_ply(path)


def test_scene_tensors_on_another_dtype_are_refused_before_writing(tmp_path):
    scene = random_scene(num_gaussians=3)
    scene.means = scene.means.to(torch.float64)
    with pytest.raises(ValueError, match="means: expected dtype torch.float32"):
        write_ply(tmp_path / "f64.ply", scene)
    assert list(tmp_path.iterdir()) == []
