"""Official 3DGS PLY: always the 62 official properties, the real graphdeco output read and
written back, graphdeco's load_ply logic on our files, the SH degree comment, other writers' files,
empty scenes and errors."""
import numpy as np
import pytest
import torch
from conftest import dataset_path
from plyfile import PlyData, PlyElement
from synthetic_scenes import assert_scenes_identical, random_scene

from taichi_3dgs.scene.parquet import read_scene_parquet, write_scene_parquet
from taichi_3dgs.scene.ply import read_ply, write_ply

# The graphdeco save_ply layout, spelled out here independently of the module's constant.
_OFFICIAL_NAMES = (["x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2"]
                   + [f"f_rest_{i}" for i in range(45)]
                   + ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2",
                      "rot_3"])
_FORMAT_LINE = b"format binary_little_endian 1.0\n"


@pytest.fixture(scope="module")
def official_ply():
    return dataset_path("3dgs_trained_ply") / "point_cloud" / "iteration_7000" / "point_cloud.ply"


def _with_degree_comment(official_bytes, degree):
    """The official file as write_ply writes it: the same bytes plus our degree comment line."""
    return official_bytes.replace(
        _FORMAT_LINE, _FORMAT_LINE + f"comment taichi_3dgs sh_degree {degree}\n".encode(), 1)


def _header_lines(path):
    data = path.read_bytes()
    return data[:data.index(b"end_header\n")].decode("ascii").splitlines()


def _strip_comments(path):
    ply = PlyData.read(str(path), mmap=False)
    ply.comments = []
    ply.write(str(path))


def graphdeco_load_ply(path, max_sh_degree=3):
    """The property lookups of graphdeco `GaussianModel.load_ply` (numpy only, no CUDA)."""
    plydata = PlyData.read(str(path))
    element = plydata.elements[0]
    xyz = np.stack((np.asarray(element["x"]), np.asarray(element["y"]),
                    np.asarray(element["z"])), axis=1)
    opacities = np.asarray(element["opacity"])[..., np.newaxis]
    features_dc = np.zeros((xyz.shape[0], 3, 1))
    for c in range(3):
        features_dc[:, c, 0] = np.asarray(element[f"f_dc_{c}"])
    extra_f_names = [p.name for p in element.properties if p.name.startswith("f_rest_")]
    extra_f_names = sorted(extra_f_names, key=lambda x: int(x.split("_")[-1]))
    assert len(extra_f_names) == 3 * (max_sh_degree + 1) ** 2 - 3
    features_extra = np.zeros((xyz.shape[0], len(extra_f_names)))
    for idx, attr_name in enumerate(extra_f_names):
        features_extra[:, idx] = np.asarray(element[attr_name])
    features_extra = features_extra.reshape((xyz.shape[0], 3, (max_sh_degree + 1) ** 2 - 1))

    def by_prefix(prefix):
        names = sorted((p.name for p in element.properties if p.name.startswith(prefix)),
                       key=lambda x: int(x.split("_")[-1]))
        return np.stack([np.asarray(element[name]) for name in names], axis=1)

    return {"xyz": xyz, "opacity": opacities, "features_dc": features_dc,
            "features_extra": features_extra, "scaling": by_prefix("scale_"),
            "rotation": by_prefix("rot")}


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


def test_official_ply_written_back_has_identical_vertex_data_and_one_comment_more(official_ply,
                                                                                   tmp_path):
    out = tmp_path / "copy.ply"
    write_ply(out, read_ply(official_ply))
    original = official_ply.read_bytes()
    written = out.read_bytes()
    header_end = original.index(b"end_header\n") + len(b"end_header\n")
    assert written[-(len(original) - header_end):] == original[header_end:]  # 9080 * 62 * 4 B
    assert written == _with_degree_comment(original, 3)


def test_official_ply_through_parquet_and_back_is_unchanged(official_ply, tmp_path):
    scene = read_ply(official_ply)
    write_scene_parquet(tmp_path / "scene.parquet", scene)
    from_parquet = read_scene_parquet(tmp_path / "scene.parquet")
    assert_scenes_identical(from_parquet, scene)
    write_ply(tmp_path / "back.ply", from_parquet)
    assert (tmp_path / "back.ply").read_bytes() == _with_degree_comment(
        official_ply.read_bytes(), 3)


def test_our_copy_of_the_official_ply_loads_with_graphdeco_logic_to_the_same_values(official_ply,
                                                                                     tmp_path):
    out = tmp_path / "copy.ply"
    write_ply(out, read_ply(official_ply))
    ours, theirs = graphdeco_load_ply(out), graphdeco_load_ply(official_ply)
    assert ours.keys() == theirs.keys()
    for name in ours:
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_header_lists_the_62_official_float_properties_and_the_degree(tmp_path, sh_degree):
    path = tmp_path / "scene.ply"
    write_ply(path, random_scene(num_gaussians=7, sh_degree=sh_degree))
    assert _header_lines(path) == (
        ["ply", "format binary_little_endian 1.0", f"comment taichi_3dgs sh_degree {sh_degree}",
         "element vertex 7"] + [f"property float {name}" for name in _OFFICIAL_NAMES])
    assert path.stat().st_size == len("\n".join(_header_lines(path))) + len("\nend_header\n") \
        + 7 * 62 * 4


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_every_degree_loads_with_graphdeco_logic_with_zeros_above_the_degree(tmp_path, sh_degree):
    scene = random_scene(num_gaussians=30, sh_degree=sh_degree)
    path = tmp_path / "scene.ply"
    write_ply(path, scene)
    loaded = graphdeco_load_ply(path)
    np.testing.assert_array_equal(loaded["xyz"], scene.means.numpy())
    np.testing.assert_array_equal(loaded["features_dc"][:, :, 0], scene.sh_coeffs[:, 0].numpy())
    # graphdeco: [N, 3 channels, 15 coefficients], the transpose of our [N, 15, 3].
    np.testing.assert_array_equal(loaded["features_extra"].transpose(0, 2, 1),
                                  scene.sh_coeffs[:, 1:].numpy())
    assert not loaded["features_extra"][:, :, (sh_degree + 1) ** 2 - 1:].any()
    if sh_degree:
        assert loaded["features_extra"][:, :, (sh_degree + 1) ** 2 - 2].any()
    np.testing.assert_array_equal(loaded["opacity"][:, 0], scene.opacity_logits.numpy())
    np.testing.assert_array_equal(loaded["scaling"], scene.log_scales.numpy())
    np.testing.assert_array_equal(loaded["rotation"], scene.quats.numpy())


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_round_trip_is_identical_with_the_degree_from_the_comment(tmp_path, sh_degree):
    scene = random_scene(num_gaussians=30, sh_degree=sh_degree)
    write_ply(tmp_path / "scene.ply", scene)
    assert_scenes_identical(read_ply(tmp_path / "scene.ply"), scene)


@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3])
def test_without_the_comment_the_degree_is_the_highest_non_zero_band(tmp_path, sh_degree):
    scene = random_scene(num_gaussians=30, sh_degree=sh_degree)
    path = tmp_path / "scene.ply"
    write_ply(path, scene)
    _strip_comments(path)
    assert not any(line.startswith("comment") for line in _header_lines(path))
    assert_scenes_identical(read_ply(path), scene)


def test_the_comment_keeps_a_degree_whose_top_band_is_zero(tmp_path):
    scene = random_scene(num_gaussians=30, sh_degree=1)
    scene.sh_degree = 3  # bands 2 and 3 active but all zero, as right after a degree step
    path = tmp_path / "scene.ply"
    write_ply(path, scene)
    assert read_ply(path).sh_degree == 3
    _strip_comments(path)
    assert read_ply(path).sh_degree == 1


@pytest.mark.parametrize("comment", ["taichi_3dgs sh_degree 4", "taichi_3dgs sh_degree two",
                                     "taichi_3dgs sh_degree", "taichi_3dgs sh_degree 1 2"])
def test_bad_degree_comment_names_file_and_expected_form(tmp_path, comment):
    path = tmp_path / "bad_comment.ply"
    write_ply(path, random_scene(num_gaussians=3, sh_degree=1))
    ply = PlyData.read(str(path), mmap=False)
    ply.comments = [comment]
    ply.write(str(path))
    with pytest.raises(ValueError, match=r"bad_comment\.ply: header comment '.*': expected one "
                                         r"header comment 'taichi_3dgs sh_degree V' with V one "
                                         r"of 0, 1, 2, 3"):
        read_ply(path)


def test_antialiased_scene_round_trips_with_its_header_comment(tmp_path):
    scene = random_scene(num_gaussians=7, sh_degree=1, antialiased=True)
    path = tmp_path / "scene.ply"
    write_ply(path, scene)
    assert _header_lines(path)[2:4] == ["comment taichi_3dgs sh_degree 1",
                                        "comment taichi_3dgs antialiased true"]
    assert_scenes_identical(read_ply(path), scene)


@pytest.mark.parametrize("comments, antialiased", [([], False),
                                                   (["taichi_3dgs antialiased false"], False),
                                                   (["taichi_3dgs antialiased true"], True)])
def test_antialiased_is_read_from_the_comment_and_false_without_it(tmp_path, comments, antialiased):
    path = tmp_path / "scene.ply"
    write_ply(path, random_scene(num_gaussians=3, antialiased=True))
    ply = PlyData.read(str(path), mmap=False)
    ply.comments = comments
    ply.write(str(path))
    assert read_ply(path).antialiased is antialiased


@pytest.mark.parametrize("comments", [["taichi_3dgs antialiased yes"],
                                      ["taichi_3dgs antialiased true"] * 2])
def test_bad_antialiased_comment_names_file_and_expected_form(tmp_path, comments):
    path = tmp_path / "bad_comment.ply"
    write_ply(path, random_scene(num_gaussians=3))
    ply = PlyData.read(str(path), mmap=False)
    ply.comments = comments
    ply.write(str(path))
    with pytest.raises(ValueError, match=r"bad_comment\.ply: header comments?.*: expected one header "
                                         r"comment 'taichi_3dgs antialiased V' with V one of true, false"):
        read_ply(path)


def test_degree_comment_below_the_non_zero_bands_is_refused(tmp_path):
    path = tmp_path / "low_comment.ply"
    write_ply(path, random_scene(num_gaussians=3, sh_degree=2))
    ply = PlyData.read(str(path), mmap=False)
    ply.comments = ["taichi_3dgs sh_degree 1"]
    ply.write(str(path))
    with pytest.raises(ValueError, match=r"low_comment\.ply: header comment 'taichi_3dgs "
                                         r"sh_degree 1' but vertex row 0 has non-zero f_rest_"):
        read_ply(path)


def _write_other_writer_ply(path, scene, num_rest, comments=()):
    """A PLY as a writer that stores only the bands of `scene`'s degree would write it."""
    per_channel = num_rest // 3
    names = (_OFFICIAL_NAMES[:9] + [f"f_rest_{i}" for i in range(num_rest)]
             + _OFFICIAL_NAMES[-8:])
    sh = scene.sh_coeffs.numpy()
    columns = ([scene.means.numpy(), np.zeros((scene.num_gaussians, 3), np.float32), sh[:, 0],
                sh[:, 1:1 + per_channel].transpose(0, 2, 1).reshape(len(sh), num_rest),
                scene.opacity_logits.numpy()[:, None], scene.log_scales.numpy(),
                scene.quats.numpy()])
    values = np.concatenate(columns, axis=1)
    vertices = np.empty(scene.num_gaussians, dtype=[(name, "<f4") for name in names])
    for i, name in enumerate(names):
        vertices[name] = values[:, i]
    PlyData([PlyElement.describe(vertices, "vertex")], comments=list(comments)).write(str(path))


@pytest.mark.parametrize("sh_degree, num_rest", [(0, 0), (1, 9), (2, 24)])
def test_other_writers_files_with_fewer_f_rest_read_with_that_degree(tmp_path, sh_degree,
                                                                     num_rest):
    scene = random_scene(num_gaussians=30, sh_degree=sh_degree)
    path = tmp_path / "short.ply"
    _write_other_writer_ply(path, scene, num_rest)
    assert_scenes_identical(read_ply(path), scene)


def test_degree_comment_above_the_f_rest_count_is_refused(tmp_path):
    path = tmp_path / "short.ply"
    _write_other_writer_ply(path, random_scene(num_gaussians=3, sh_degree=1), 9,
                            comments=["taichi_3dgs sh_degree 2"])
    with pytest.raises(ValueError, match=r"short\.ply: header comment 'taichi_3dgs sh_degree 2' "
                                         r"but only 9 f_rest_\* vertex properties"):
        read_ply(path)


@pytest.mark.parametrize("sh_degree", [0, 2])
def test_empty_scene_writes_a_header_with_zero_vertices_and_reads_back(tmp_path, sh_degree):
    scene = random_scene(num_gaussians=0, sh_degree=sh_degree)
    path = tmp_path / "empty.ply"
    write_ply(path, scene)
    assert "element vertex 0" in _header_lines(path)
    assert path.read_bytes().endswith(b"property float rot_3\nend_header\n")
    assert_scenes_identical(read_ply(path), scene)
    assert graphdeco_load_ply(path)["features_extra"].shape == (0, 3, 15)


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
