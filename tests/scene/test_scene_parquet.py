"""Trained-scene parquet: exact round trip, FORMATS.md layout, original-project files, errors."""
import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from synthetic_scenes import assert_scenes_identical, random_scene

from taichi_3dgs.scene.parquet import (TRAINED_SCENE_COLUMNS, TrainingResolution, is_trained_scene_parquet,
                                       read_scene_parquet, read_training_resolution, write_scene_parquet)


@pytest.mark.parametrize("sh_degree, color_activation", [(3, "linear"), (1, "sigmoid")])
def test_round_trip_gives_identical_tensors_and_metadata(tmp_path, sh_degree, color_activation):
    scene = random_scene(num_gaussians=50, sh_degree=sh_degree, color_activation=color_activation)
    path = tmp_path / "scene.parquet"
    write_scene_parquet(path, scene)
    assert_scenes_identical(read_scene_parquet(path), scene)


def test_written_file_has_the_formats_md_columns_metadata_and_xyzw_quaternions(tmp_path):
    scene = random_scene(num_gaussians=20, sh_degree=2)
    path = tmp_path / "scene.parquet"
    write_scene_parquet(path, scene)
    table = pq.read_table(path)
    assert table.column_names == TRAINED_SCENE_COLUMNS
    assert len(TRAINED_SCENE_COLUMNS) == 59
    assert all(str(field.type) == "float" for field in table.schema)
    metadata = pq.ParquetFile(path).metadata.metadata
    assert metadata[b"taichi_3dgs.format_version"] == b"1"
    assert metadata[b"taichi_3dgs.color_activation"] == b"linear"
    assert metadata[b"taichi_3dgs.sh_degree"] == b"2"
    frame = table.to_pandas()
    quats = scene.quats.numpy()
    np.testing.assert_array_equal(frame[["cov_q0", "cov_q1", "cov_q2", "cov_q3"]].to_numpy(),
                                  quats[:, [1, 2, 3, 0]])
    np.testing.assert_array_equal(frame["g_sh5"].to_numpy(), scene.sh_coeffs[:, 5, 1].numpy())
    np.testing.assert_array_equal(frame["alpha0"].to_numpy(), scene.opacity_logits.numpy())


def _original_project_frame(num_rows: int, seed: int = 0) -> pd.DataFrame:
    """Columns exactly as the original project's `to_parquet` wrote them: no metadata keys."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(num_rows, len(TRAINED_SCENE_COLUMNS))).astype(np.float32)
    return pd.DataFrame(values, columns=TRAINED_SCENE_COLUMNS)


def test_original_project_file_reads_as_sigmoid_degree_3(tmp_path):
    frame = _original_project_frame(12)
    path = tmp_path / "legacy.parquet"
    frame.to_parquet(path)
    scene = read_scene_parquet(path)
    assert (scene.color_activation, scene.sh_degree, scene.num_gaussians) == ("sigmoid", 3, 12)
    assert scene.antialiased is False
    np.testing.assert_array_equal(scene.quats[:, 0].numpy(), frame["cov_q3"].to_numpy())
    np.testing.assert_array_equal(scene.sh_coeffs[:, 15, 2].numpy(), frame["b_sh15"].to_numpy())
    np.testing.assert_array_equal(scene.means[:, 2].numpy(), frame["z"].to_numpy())


def test_float64_columns_are_read_as_float32(tmp_path):
    frame = _original_project_frame(4).astype(np.float64) / 3.0
    path = tmp_path / "legacy64.parquet"
    frame.to_parquet(path)
    scene = read_scene_parquet(path)
    assert scene.log_scales.dtype == torch.float32
    np.testing.assert_array_equal(scene.log_scales[:, 1].numpy(),
                                  frame["cov_s1"].to_numpy().astype(np.float32))


def test_is_trained_scene_parquet_tells_trained_scenes_from_input_point_clouds(tmp_path):
    trained, cloud = tmp_path / "trained.parquet", tmp_path / "cloud.parquet"
    write_scene_parquet(trained, random_scene(num_gaussians=3))
    pd.DataFrame({c: np.zeros(3, np.float32) for c in "xyzrgb"}).to_parquet(cloud)
    assert is_trained_scene_parquet(trained)
    assert not is_trained_scene_parquet(cloud)


def test_missing_column_error_names_file_and_column(tmp_path):
    path = tmp_path / "no_alpha.parquet"
    _original_project_frame(3).drop(columns=["alpha0"]).to_parquet(path)
    with pytest.raises(ValueError, match=r"no_alpha\.parquet: missing trained-scene column\(s\) "
                                         r"alpha0 \(1 of 59\)"):
        read_scene_parquet(path)


def test_nan_error_names_file_column_and_row(tmp_path):
    frame = _original_project_frame(6)
    frame.loc[4, "cov_s1"] = np.nan
    path = tmp_path / "nan.parquet"
    frame.to_parquet(path)
    with pytest.raises(ValueError, match=r"nan\.parquet: column 'cov_s1' row 4 is nan, expected a "
                                         r"finite number"):
        read_scene_parquet(path)


def test_string_column_is_rejected_with_its_name(tmp_path):
    frame = _original_project_frame(2)
    frame["x"] = ["a", "b"]
    path = tmp_path / "text.parquet"
    frame.to_parquet(path)
    with pytest.raises(ValueError, match=r"text\.parquet: column 'x' has dtype object"):
        read_scene_parquet(path)


def test_incomplete_metadata_is_an_error(tmp_path):
    path = tmp_path / "partial.parquet"
    table = pq.read_table(_write(tmp_path, random_scene(num_gaussians=2)))
    metadata = dict(table.schema.metadata)
    del metadata[b"taichi_3dgs.sh_degree"]
    pq.write_table(table.replace_schema_metadata(metadata), path)
    with pytest.raises(ValueError, match=r"partial\.parquet: .* not 'taichi_3dgs.sh_degree'"):
        read_scene_parquet(path)


@pytest.mark.parametrize("antialiased", [True, False])
def test_antialiased_flag_round_trips_as_the_formats_md_metadata_key(tmp_path, antialiased):
    scene = random_scene(num_gaussians=10, antialiased=antialiased)
    path = _write(tmp_path, scene)
    expected = b"true" if antialiased else b"false"
    assert pq.ParquetFile(path).metadata.metadata[b"taichi_3dgs.antialiased"] == expected
    assert_scenes_identical(read_scene_parquet(path), scene)


def test_file_of_an_older_version_without_the_antialiased_key_reads_as_not_antialiased(tmp_path):
    table = pq.read_table(_write(tmp_path, random_scene(num_gaussians=3, antialiased=True)))
    metadata = dict(table.schema.metadata)
    del metadata[b"taichi_3dgs.antialiased"]
    path = tmp_path / "older.parquet"
    pq.write_table(table.replace_schema_metadata(metadata), path)
    assert read_scene_parquet(path).antialiased is False


def test_bad_antialiased_value_is_an_error_naming_file_key_and_values(tmp_path):
    table = pq.read_table(_write(tmp_path, random_scene(num_gaussians=3)))
    metadata = dict(table.schema.metadata)
    metadata[b"taichi_3dgs.antialiased"] = b"yes"
    path = tmp_path / "bad.parquet"
    pq.write_table(table.replace_schema_metadata(metadata), path)
    with pytest.raises(ValueError, match=r"bad\.parquet: metadata 'taichi_3dgs\.antialiased' is 'yes', "
                                         r"expected 'true' or 'false'"):
        read_scene_parquet(path)


def test_not_a_parquet_file_is_a_value_error_naming_it(tmp_path):
    path = tmp_path / "junk.parquet"
    path.write_text("not parquet")
    with pytest.raises(ValueError, match=r"junk\.parquet: not a readable parquet file"):
        read_scene_parquet(path)


def test_invalid_scene_is_not_written(tmp_path):
    scene = random_scene(num_gaussians=4)
    scene.opacity_logits[1] = float("inf")
    path = tmp_path / "bad.parquet"
    with pytest.raises(ValueError, match="opacity_logits: non-finite value in row 1"):
        write_scene_parquet(path, scene)
    assert list(tmp_path.iterdir()) == []


def _write(folder, scene):
    path = folder / "scene.parquet"
    write_scene_parquet(path, scene)
    return path


def test_training_resolution_round_trips_as_the_formats_md_metadata_key(tmp_path):
    path = tmp_path / "scene.parquet"
    write_scene_parquet(path, random_scene(num_gaussians=3), TrainingResolution(4, 1600))
    value = pq.ParquetFile(path).metadata.metadata[b"taichi_3dgs.training_resolution"]
    assert json.loads(value) == {"image-downscale-factor": 4, "max-image-long-side": 1600}
    assert read_training_resolution(path) == TrainingResolution(4, 1600)


def test_a_scene_without_training_resolution_reads_none(tmp_path):
    assert read_training_resolution(_write(tmp_path, random_scene(num_gaussians=3))) is None
    assert read_training_resolution(tmp_path / "scene.ply") is None  # PLY files record none (not read)


@pytest.mark.parametrize("value", [b"4", b'{"image-downscale-factor": 0, "max-image-long-side": 1600}',
                                   b'{"image-downscale-factor": 2}', b'{"image-downscale-factor": 2.5, '
                                   b'"max-image-long-side": 1600}'])
def test_a_bad_training_resolution_is_an_error_naming_file_and_key(tmp_path, value):
    table = pq.read_table(_write(tmp_path, random_scene(num_gaussians=3)))
    metadata = {**table.schema.metadata, b"taichi_3dgs.training_resolution": value}
    path = tmp_path / "bad.parquet"
    pq.write_table(table.replace_schema_metadata(metadata), path)
    with pytest.raises(ValueError, match=r"bad\.parquet: metadata 'taichi_3dgs\.training_resolution' is .*; expected JSON"):
        read_training_resolution(path)
