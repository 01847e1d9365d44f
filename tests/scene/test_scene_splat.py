""".splat export (antimatter15 layout) checked by an independent numpy decode of the real graphdeco
PLY, and `write_scene` / `export_scene` choosing it by suffix."""
import warnings
from dataclasses import replace

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import dataset_path
from plyfile import PlyData
from synthetic_scenes import random_scene

from taichi_3dgs.scene.io import export_scene, write_scene
from taichi_3dgs.scene.parquet import write_scene_parquet
from taichi_3dgs.scene.ply import read_ply, write_ply
from taichi_3dgs.scene.splat import write_splat

# antimatter15/splat convert.py: 3 float32 position, 3 float32 scale, 4 uint8 RGBA, 4 uint8 quat.
_RECORD = np.dtype([("xyz", "<f4", (3,)), ("scale", "<f4", (3,)), ("rgba", "u1", (4,)),
                    ("rot", "u1", (4,))])
_SH_C0 = 0.28209479177387814  # graphdeco utils/sh_utils.py C0


@pytest.fixture(scope="module")
def official_ply():
    return dataset_path("3dgs_trained_ply") / "point_cloud" / "iteration_7000" / "point_cloud.ply"


@pytest.fixture(scope="module")
def official_splat(official_ply, tmp_path_factory):
    path = tmp_path_factory.mktemp("splat") / "official.splat"
    write_splat(path, read_ply(official_ply))
    return path


@pytest.fixture(scope="module")
def expected(official_ply):
    """The file's fields computed from the raw PLY vertex arrays, in file order, float64."""
    vertex = PlyData.read(str(official_ply))["vertex"]

    def columns(*names):
        return np.stack([np.asarray(vertex[name], dtype=np.float64) for name in names], axis=1)

    log_scales = columns("scale_0", "scale_1", "scale_2")
    opacity = 1.0 / (1.0 + np.exp(-np.asarray(vertex["opacity"], dtype=np.float64)))
    colour = np.clip(0.5 + _SH_C0 * columns("f_dc_0", "f_dc_1", "f_dc_2"), 0.0, 1.0)
    quats = columns("rot_0", "rot_1", "rot_2", "rot_3")
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    return {
        "xyz": columns("x", "y", "z").astype(np.float32),
        "scale": np.exp(log_scales).astype(np.float32),
        "rgba": np.rint(np.concatenate([colour, opacity[:, None]], axis=1) * 255).astype(np.uint8),
        "rot": np.clip(np.rint(quats * 128 + 128), 0, 255).astype(np.uint8),
        "importance": np.exp(log_scales.sum(axis=1)) * opacity,
    }


def _decode(path):
    return np.frombuffer(path.read_bytes(), dtype=_RECORD)


def test_file_is_32_bytes_per_gaussian_without_header(official_splat):
    assert official_splat.stat().st_size == 32 * 9080


def test_records_are_sorted_by_descending_volume_times_opacity(official_splat, expected):
    order = np.argsort(-expected["importance"], kind="stable")
    assert not np.array_equal(order, np.arange(len(order)))  # the file is not already sorted
    np.testing.assert_array_equal(_decode(official_splat)["xyz"], expected["xyz"][order])


@pytest.mark.parametrize("field", ["xyz", "scale", "rgba", "rot"])
def test_decoded_fields_equal_the_independently_computed_values(official_splat, expected, field):
    order = np.argsort(-expected["importance"], kind="stable")
    np.testing.assert_array_equal(_decode(official_splat)[field], expected[field][order])


def test_decoded_values_span_the_quantisation_range(official_splat):
    records = _decode(official_splat)
    # Real colours clip at both ends; opacities reach down to ~0.01 (PROVENANCE: 5 % = 0.010).
    assert records["rgba"][:, :3].min() == 0 and records["rgba"][:, :3].max() == 255
    assert records["rgba"][:, 3].min() <= 3
    # Decoded as the viewer does, (b - 128) / 128, the quaternions are unit length to quantisation.
    norms = np.linalg.norm((records["rot"].astype(np.float64) - 128) / 128, axis=1)
    assert np.abs(norms - 1).max() < 4 / 128


def test_empty_scene_writes_an_empty_file(tmp_path):
    path = tmp_path / "empty.splat"
    write_splat(path, random_scene(num_gaussians=0))
    assert path.exists() and path.read_bytes() == b""


def test_sigmoid_scene_is_refused_pointing_to_the_conversion(tmp_path):
    path = tmp_path / "sigmoid.splat"
    with pytest.raises(ValueError, match=r"sigmoid\.splat: .* as \.splat, .*taichi_3dgs\.scene"
                                         r"\.color_conversion\.sigmoid_to_linear"):
        write_splat(path, random_scene(num_gaussians=4, color_activation="sigmoid"))
    assert not path.exists()


def test_antialiased_scene_is_written_with_a_warning_that_the_flag_is_lost(tmp_path):
    scene = random_scene(num_gaussians=5, antialiased=True)
    with pytest.warns(UserWarning, match=r"aa\.splat: the scene is antialiased .* which the \.splat "
                                         r"format cannot record"):
        write_splat(tmp_path / "aa.splat", scene)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a plain scene loses nothing: no warning
        write_splat(tmp_path / "plain.splat", replace(scene, antialiased=False))
    assert (tmp_path / "aa.splat").read_bytes() == (tmp_path / "plain.splat").read_bytes()


def test_write_scene_writes_splat_by_suffix(tmp_path):
    scene = random_scene(num_gaussians=20)
    write_scene(tmp_path / "a.SPLAT", scene)
    write_splat(tmp_path / "b.splat", scene)
    assert (tmp_path / "a.SPLAT").read_bytes() == (tmp_path / "b.splat").read_bytes()
    assert len((tmp_path / "a.SPLAT").read_bytes()) == 32 * 20


@pytest.mark.parametrize("suffix", [".ply", ".splat"])
def test_export_of_a_linear_ply_writes_it_exactly_and_reports_no_fit(official_ply, tmp_path,
                                                                     suffix):
    scene = read_ply(official_ply)
    assert export_scene(official_ply, tmp_path / f"out{suffix}").fit_error is None
    (write_ply if suffix == ".ply" else write_splat)(tmp_path / f"direct{suffix}", scene)
    assert (tmp_path / f"out{suffix}").read_bytes() == (tmp_path / f"direct{suffix}").read_bytes()


def test_export_of_an_original_project_parquet_converts_the_colour_to_linear(tmp_path):
    write_scene_parquet(tmp_path / "ours.parquet",
                        random_scene(num_gaussians=40, color_activation="sigmoid"))
    table = pq.read_table(tmp_path / "ours.parquet")
    pq.write_table(table.replace_schema_metadata({}), tmp_path / "legacy.parquet")
    fit_error = export_scene(tmp_path / "legacy.parquet", tmp_path / "legacy.splat").fit_error
    assert 0.0 < fit_error < 0.01
    records = _decode(tmp_path / "legacy.splat")
    assert len(records) == 40 and records["rgba"][:, :3].std() > 30  # colours, not all grey


def test_export_to_another_suffix_is_refused_before_reading(tmp_path):
    with pytest.raises(ValueError, match=r"out\.parquet: unknown scene file suffix '\.parquet', "
                                         r"expected one of \['\.ply', '\.compressed\.ply', "
                                         r"'\.spz', '\.sog', '\.glb', '\.splat'\]"):
        export_scene(tmp_path / "missing.ply", tmp_path / "out.parquet")
    assert list(tmp_path.iterdir()) == []
