"""Depth maps of camera records (FORMATS.md "Camera JSON": depth_path, depth_type, depth_scale):
the JSON fields, reading 16-bit PNG and .npy files, resampling with the image, bad files and fields
refused naming the JSON, the record and the file; and the demo scene's exact depth maps."""
from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from taichi_3dgs.data.cameras import CameraRecord, read_cameras_json, write_cameras_json
from taichi_3dgs.data.demo_scene import (
    BOX_MAX, BOX_MIN, GROUND_HALF_SIZE, SPHERE_CENTRE, SPHERE_RADIUS, DemoSceneSpec, make_demo_scene,
)
from taichi_3dgs.data.views import load_view, load_views

WIDTH, HEIGHT = 8, 6


def _write_json(folder: Path, **depth_fields) -> Path:
    """train.json beside an 8x6 image.png, with one record carrying `depth_fields`."""
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), 128, np.uint8)).save(folder / "image.png")
    item = {"image_path": "image.png", "T_pointcloud_camera": np.eye(4).tolist(),
            "camera_intrinsics": [[10, 0, 4], [0, 10, 3], [0, 0, 1]], "camera_width": WIDTH,
            "camera_height": HEIGHT, **depth_fields}
    path = folder / "train.json"
    path.write_text(json.dumps([item]))
    return path


def _load(json_path: Path, downscale: int = 1):
    (view,) = load_views(read_cameras_json(json_path), downscale, 1600, "cpu", str(json_path), with_depth=True)
    return view


def _depths() -> np.ndarray:
    values = np.arange(1, WIDTH * HEIGHT + 1, dtype=np.float64).reshape(HEIGHT, WIDTH) * 100.0
    values[0, 0] = 0.0  # no depth there
    return values


def test_metric_16bit_png_is_divided_by_depth_scale(tmp_path):
    Image.fromarray(_depths().astype(np.uint16)).save(tmp_path / "depth.png")
    view = _load(_write_json(tmp_path, depth_path="depth.png", depth_type="metric", depth_scale=1000))
    assert view.camera.depth_type == "metric"
    assert view.depth.dtype == torch.float32 and view.depth.shape == (HEIGHT, WIDTH)
    assert torch.allclose(view.depth.double(), torch.from_numpy(_depths() / 1000.0), rtol=1e-6, atol=0)


def test_npy_float_array_is_read_as_is_with_non_finite_values_as_no_depth(tmp_path):
    depths = _depths() / 7.0
    depths[1, 2], depths[2, 3] = np.nan, np.inf
    np.save(tmp_path / "depth.npy", depths.astype(np.float32))
    view = _load(_write_json(tmp_path, depth_path="depth.npy"))
    assert view.camera.depth_type == "metric"  # the default
    expected = np.where(np.isfinite(depths), depths, 0.0)
    assert torch.allclose(view.depth.double(), torch.from_numpy(expected), rtol=1e-6, atol=0)
    assert view.depth[1, 2] == 0 and view.depth[2, 3] == 0 and view.depth[0, 0] == 0


def test_inverse_depth_map_keeps_its_type_and_values(tmp_path):
    # Relative inverse depth as a monocular estimator saves it: no unit, so no depth_scale needed.
    Image.fromarray(_depths().astype(np.uint16)).save(tmp_path / "disparity.png")
    view = _load(_write_json(tmp_path, depth_path="disparity.png", depth_type="inverse"))
    assert view.camera.depth_type == "inverse"
    assert torch.equal(view.depth.double(), torch.from_numpy(_depths()))


def test_depth_is_loaded_only_when_asked_for(tmp_path):
    np.save(tmp_path / "depth.npy", _depths())
    (record,) = read_cameras_json(_write_json(tmp_path, depth_path="depth.npy"))
    assert load_view(record, 1, 1600, "cpu").depth is None
    assert load_view(record, 1, 1600, "cpu", with_depth=True).depth is not None


def test_downscaled_depth_takes_nearest_values_so_holes_do_not_bleed(tmp_path):
    # Depths 2 and 8 and holes (0) at random: an average would make values in between; nearest
    # neighbour keeps only values of the map.
    depths = np.random.default_rng(3).choice([0.0, 2.0, 8.0], size=(HEIGHT, WIDTH))
    np.save(tmp_path / "depth.npy", depths)
    view = _load(_write_json(tmp_path, depth_path="depth.npy"), downscale=2)
    assert view.depth.shape == view.image.shape[:2] == (3, 4)
    assert set(view.depth.flatten().tolist()) <= {0.0, 2.0, 8.0}
    assert set(view.depth.flatten().tolist()) >= {2.0, 8.0}


def test_downscaled_depth_loads_without_pytorchs_read_only_array_warning(tmp_path):
    """Issue 27 item 12: the resampled map was a read-only view of Pillow's buffer."""
    np.save(tmp_path / "depth.npy", _depths())
    json_path = _write_json(tmp_path, depth_path="depth.npy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        view = _load(json_path, downscale=2)
    view.depth += 1.0  # a tensor of its own


def test_depth_fields_round_trip_through_the_json(tmp_path):
    records = [CameraRecord(image_path=tmp_path / "a.png", K=np.diag([10.0, 10.0, 1.0]), T_pointcloud_camera=np.eye(4),
                            width=8, height=6, depth_path=tmp_path / "depths" / "a.png", depth_type="metric",
                            depth_scale=1000.0),
               CameraRecord(image_path=tmp_path / "b.png", K=np.diag([10.0, 10.0, 1.0]), T_pointcloud_camera=np.eye(4),
                            width=8, height=6, depth_path=Path("/elsewhere/b.npy"), depth_type="inverse"),
               CameraRecord(image_path=tmp_path / "c.png", K=np.diag([10.0, 10.0, 1.0]), T_pointcloud_camera=np.eye(4),
                            width=8, height=6)]
    write_cameras_json(tmp_path / "train.json", records)
    raw = json.loads((tmp_path / "train.json").read_text())
    assert raw[0]["depth_path"] == "depths/a.png" and raw[1]["depth_path"] == "/elsewhere/b.npy"
    assert "depth_scale" not in raw[1] and "depth_path" not in raw[2]
    assert read_cameras_json(tmp_path / "train.json") == records


@pytest.mark.parametrize("fields, named", [
    (dict(depth_type="metric"), "'depth_type' is given without a depth_path"),
    (dict(depth_scale=1000), "'depth_scale' is given without a depth_path"),
    (dict(depth_path="depth.exr"), "'depth_path' is 'depth.exr'; expected a file ending in .png or .npy"),
    (dict(depth_path="depth.npy", depth_type="disparity"), "'depth_type' is 'disparity'; expected one of"),
    (dict(depth_path="depth.npy", depth_scale=0), "'depth_scale' is 0; expected a finite number > 0"),
    (dict(depth_path="depth.npy", depth_scale="mm"), "'depth_scale' is 'mm'"),
    (dict(depth_path="depth.png", depth_type="metric"), "'depth_scale' is missing for the metric 16-bit PNG depth.png"),
    (dict(depth_path=""), "'depth_path' is ''; expected a file ending in .png or .npy"),
    (dict(depth_path=3), "'depth_path' is 3; expected a non-empty path string"),
])
def test_bad_depth_fields_are_refused_naming_the_json_and_record(tmp_path, fields, named):
    path = _write_json(tmp_path, **fields)
    with pytest.raises(ValueError) as error:
        read_cameras_json(path)
    assert str(error.value).startswith(f"{path}: record 0: field ")
    assert named in str(error.value)


def _write_8bit_png(path):
    Image.fromarray(np.full((HEIGHT, WIDTH), 3, np.uint8)).save(path)


def _write_rgb_png(path):
    Image.fromarray(np.full((HEIGHT, WIDTH, 3), 3, np.uint16).astype(np.uint8)).save(path)


@pytest.mark.parametrize("name, write, named", [
    ("depth.png", _write_8bit_png, "is a PNG of mode 'L'"),
    ("depth.png", _write_rgb_png, "is a PNG of mode 'RGB'"),
    ("depth.png", lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n broken"), "cannot decode"),
    ("depth.npy", lambda p: np.save(p, np.ones((HEIGHT, WIDTH, 1))), "array of shape (6, 8, 1)"),
    ("depth.npy", lambda p: np.save(p, np.array(["a", "b"])), "array of shape (2,) and dtype <U1"),
    ("depth.npy", lambda p: np.save(p, np.array([{"a": 1}]), allow_pickle=True), "cannot read"),
    ("depth.npy", lambda p: p.write_bytes(b"not numpy"), "cannot read"),
    ("depth.npy", lambda p: np.save(p, -np.ones((HEIGHT, WIDTH))), "negative value -0.001 at row 0, column 0"),
    ("depth.npy", lambda p: np.save(p, np.ones((HEIGHT + 1, WIDTH))), "is 8x7 pixels but image_path"),
])
def test_bad_depth_files_are_refused_naming_the_json_record_and_file(tmp_path, name, write, named):
    write(tmp_path / name)
    path = _write_json(tmp_path, depth_path=name, depth_scale=1000)
    with pytest.raises(ValueError) as error:
        _load(path)
    message = str(error.value)
    assert message.startswith(f"{path}: record 0: depth_path {tmp_path / name}")
    assert named in message


def test_missing_depth_file_is_refused_naming_it(tmp_path):
    path = _write_json(tmp_path, depth_path="depths/missing.npy")
    with pytest.raises(FileNotFoundError, match=f"{path}: record 0: depth_path {tmp_path}/depths/missing.npy not found"):
        _load(path)


def _surface_distance(points: np.ndarray) -> np.ndarray:
    """Distance of world points [M, 3] to the nearest of the demo scene's three surfaces."""
    inside_square = (np.abs(points[:, :2]) <= GROUND_HALF_SIZE + 1e-6).all(axis=1)
    ground = np.where(inside_square, np.abs(points[:, 2]), np.inf)
    sphere = np.abs(np.linalg.norm(points - SPHERE_CENTRE, axis=1) - SPHERE_RADIUS)
    # A point on the box surface: inside the box (with tolerance) and on one of its faces.
    inside_box = ((points >= BOX_MIN - 1e-4) & (points <= BOX_MAX + 1e-4)).all(axis=1)
    face = np.minimum(np.abs(points - BOX_MIN), np.abs(points - BOX_MAX)).min(axis=1)
    box = np.where(inside_box, face, np.inf)
    return np.minimum(np.minimum(ground, sphere), box)


def test_demo_scene_depth_maps_back_project_onto_its_surfaces(tmp_path):
    folder = make_demo_scene(tmp_path, DemoSceneSpec(width=40, height=30, num_views=8, num_points=50))
    records = read_cameras_json(folder / "train.json") + read_cameras_json(folder / "val.json")
    assert len(records) == 8 and all(r.depth_type == "metric" and r.depth_path.suffix == ".npy" for r in records)
    for record in records:
        depth = np.load(record.depth_path)
        assert depth.dtype == np.float32 and depth.shape == (30, 40)
        valid = depth > 0
        assert 0.3 < valid.mean() < 1.0  # the scene and some background
        v, u = np.nonzero(valid)
        K, c2w = record.K, record.T_pointcloud_camera
        z = depth[valid].astype(np.float64)
        camera_points = np.stack([(u + 0.5 - K[0, 2]) / K[0, 0] * z, (v + 0.5 - K[1, 2]) / K[1, 1] * z, z], -1)
        world = camera_points @ c2w[:3, :3].T + c2w[:3, 3]
        # float32 depths of 3-7 units: about 1e-6 relative.
        assert _surface_distance(world).max() < 1e-4
