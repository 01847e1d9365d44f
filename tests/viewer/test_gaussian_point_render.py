"""gaussian_point_render.py on a tiny dataset made from renders of the real trained scene at known
poses (plus known 8-bit noise), so the expected PSNR is known exactly."""
import csv
import json
import subprocess
import sys

import imageio.v2 as imageio
import numpy as np
import pytest
import torch
from conftest import REPO_ROOT
from image_metrics_reference import reference_psnr, reference_ssim
from lpips_reference import random_lpips_weights, reference_lpips, write_random_lpips_weights
from PIL import Image
from viewer_fixtures import trained_ply_path, write_camera_json

from taichi_3dgs.scene import read_scene
from taichi_3dgs.scene.parquet import TrainingResolution, write_scene_parquet
from taichi_3dgs.viewer.camera_paths import fit_camera_to_bounds, orbit_path, scene_bounds
from taichi_3dgs.viewer.geometry import invert_rigid
from taichi_3dgs.viewer.poses import CameraPath, save_camera_path
from taichi_3dgs.viewer.rendering import render_image, to_uint8

WIDTH, HEIGHT, VIEWS = 96, 72, 3
NOISE_LEVELS = 3  # ground truth = render + uniform integer noise in [-3, 3] (8-bit levels)


def _run(*args, cwd):
    return subprocess.run([sys.executable, str(REPO_ROOT / "gaussian_point_render.py"), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    """val.json + images/NNN.png: noisy renders of the real scene; returns (folder, clean renders,
    ground-truth images, poses, K)."""
    folder = tmp_path_factory.mktemp("dataset")
    scene = read_scene(trained_ply_path())
    center, radius = scene_bounds(scene.means)
    start, K = fit_camera_to_bounds(center, 0.6 * radius, WIDTH, HEIGHT)
    poses = orbit_path(start, center, np.array([0.0, -1.0, 0.0]), VIEWS)
    rng = np.random.default_rng(7)
    clean, noisy = [], []
    (folder / "images").mkdir()
    for index, pose in enumerate(poses):
        pixels = to_uint8(render_image(scene, invert_rigid(pose), K, WIDTH, HEIGHT))
        noise = rng.integers(-NOISE_LEVELS, NOISE_LEVELS + 1, pixels.shape)
        ground_truth = np.clip(pixels.astype(int) + noise, 0, 255).astype(np.uint8)
        Image.fromarray(ground_truth).save(folder / "images" / f"{index:03d}.png")
        clean.append(pixels)
        noisy.append(ground_truth)
    write_camera_json(folder / "val.json", list(poses), K, WIDTH, HEIGHT)
    return folder, clean, noisy, poses, K


@pytest.fixture(scope="module")
def evaluated(dataset, tmp_path_factory):
    """The script's output folder for the dataset's val.json (run from another folder)."""
    folder = dataset[0]
    run_dir = tmp_path_factory.mktemp("run")
    result = _run("--scene", str(trained_ply_path()), "--cameras", str(folder / "val.json"),
                  "--output_dir", "out", cwd=run_dir)
    assert result.returncode == 0, result.stderr
    return run_dir / "out"


def _png(path):
    return np.asarray(Image.open(path))


def test_renders_and_gt_pngs_are_written_like_the_official_render_py(evaluated, dataset):
    names = [f"{index:05d}.png" for index in range(VIEWS)]
    assert sorted(p.name for p in (evaluated / "renders").iterdir()) == names
    assert sorted(p.name for p in (evaluated / "gt").iterdir()) == names
    for name, ground_truth in zip(names, dataset[2]):
        np.testing.assert_array_equal(_png(evaluated / "gt" / name), ground_truth)


def test_renders_reproduce_the_scene_at_the_dataset_poses(evaluated, dataset):
    for index, clean in enumerate(dataset[1]):
        np.testing.assert_array_equal(_png(evaluated / "renders" / f"{index:05d}.png"), clean)


def test_metrics_json_psnr_is_the_psnr_of_the_known_noise(evaluated, dataset):
    metrics = json.loads((evaluated / "metrics.json").read_text())
    for view, clean, noisy in zip(metrics["val"]["per_view"], dataset[1], dataset[2]):
        expected = reference_psnr(clean / 255.0, noisy / 255.0)
        assert 40.0 < expected < 50.0
        assert view["psnr"] == pytest.approx(expected, abs=1e-3)


def test_metrics_json_matches_a_recomputation_from_the_written_pngs(evaluated):
    metrics = json.loads((evaluated / "metrics.json").read_text())
    assert [view["image"] for view in metrics["val"]["per_view"]] == [f"{index:05d}" for index in range(VIEWS)]
    for view in metrics["val"]["per_view"]:
        render = _png(evaluated / "renders" / f"{view['image']}.png") / 255.0
        ground_truth = _png(evaluated / "gt" / f"{view['image']}.png") / 255.0
        assert view["psnr"] == pytest.approx(reference_psnr(render, ground_truth), abs=1e-3)
        assert view["ssim"] == pytest.approx(reference_ssim(render, ground_truth), abs=1e-4)
    for key in ("psnr", "ssim"):
        assert metrics["val"][key] == pytest.approx(np.mean([view[key] for view in metrics["val"]["per_view"]]))


def test_metrics_csv_holds_the_json_values_and_the_mean(evaluated):
    metrics = json.loads((evaluated / "metrics.json").read_text())
    with open(evaluated / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["name"] for row in rows] == [view["image"] for view in metrics["val"]["per_view"]] + ["mean"]
    for row, expected in zip(rows, metrics["val"]["per_view"] + [metrics["val"]]):
        assert float(row["psnr"]) == pytest.approx(expected["psnr"])
        assert float(row["ssim"]) == pytest.approx(expected["ssim"])


def test_lpips_weights_add_lpips_to_the_metrics_and_a_missing_file_is_refused(dataset, tmp_path):
    val_json = str(dataset[0] / "val.json")
    weights = write_random_lpips_weights(tmp_path / "alex.pt")
    result = _run("--scene", str(trained_ply_path()), "--cameras", val_json, "--output_dir", "out",
                  "--lpips_weights", "alex.pt", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    metrics = json.loads((out / "metrics.json").read_text())
    for view in metrics["val"]["per_view"]:  # on the 8-bit images written, as PSNR and SSIM
        render, ground_truth = (torch.from_numpy(_png(out / folder / f"{view['image']}.png") / 255.0).float()
                                for folder in ("renders", "gt"))
        assert view["lpips"] == pytest.approx(reference_lpips(random_lpips_weights(), render, ground_truth), rel=1e-4)
    assert metrics["val"]["lpips"] == pytest.approx(np.mean([view["lpips"] for view in metrics["val"]["per_view"]]))
    with open(out / "metrics.csv", newline="") as handle:
        assert float(list(csv.DictReader(handle))[-1]["lpips"]) == pytest.approx(metrics["val"]["lpips"])
    assert f"SSIM {metrics['val']['ssim']:.4f}, LPIPS {metrics['val']['lpips']:.4f} -> " in result.stdout
    assert weights.exists()

    refused = _run("--scene", str(trained_ply_path()), "--cameras", val_json, "--output_dir", "out2",
                   "--lpips_weights", "none.pt", cwd=tmp_path)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "error: --lpips_weights none.pt: LPIPS weights file not found" in refused.stderr
    assert not (tmp_path / "out2").exists()


def test_poses_pt_gives_renders_and_an_mp4_but_no_metrics(dataset, tmp_path):
    _, clean, _, poses, K = dataset
    save_camera_path(tmp_path / "poses.pt", CameraPath(
        np.stack([invert_rigid(pose) for pose in poses]), np.stack([K] * VIEWS), WIDTH, HEIGHT))
    result = _run("--scene", str(trained_ply_path()), "--cameras", "poses.pt",
                  "--output_dir", "out", "--video", "out/orbit.mp4", "--fps", "10", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "out" / "renders").glob("*.png"))) == VIEWS
    assert not (tmp_path / "out" / "metrics.json").exists()
    frames = imageio.mimread(tmp_path / "out" / "orbit.mp4", memtest=False)
    assert len(frames) == VIEWS and frames[0].shape == (HEIGHT, WIDTH, 3)
    assert np.abs(frames[0].astype(int) - clean[0]).mean() < 4  # H.264 is lossy but close
    assert imageio.get_reader(tmp_path / "out" / "orbit.mp4").get_meta_data()["fps"] == 10


def test_missing_image_exits_1_naming_the_record_and_renders_nothing(dataset, tmp_path):
    folder, _, _, poses, K = dataset
    write_camera_json(tmp_path / "val.json", list(poses), K, WIDTH, HEIGHT,
                      image_names=[str(folder / "images" / "000.png"), "missing.png", "x.png"])
    result = _run("--scene", str(trained_ply_path()), "--cameras", "val.json",
                  "--output_dir", "out", cwd=tmp_path)
    assert result.returncode == 1
    assert "val.json: record 1: image_path" in result.stderr and "missing.png" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_unknown_poses_suffix_exits_1(tmp_path):
    (tmp_path / "poses.txt").write_text("")
    result = _run("--scene", str(trained_ply_path()), "--cameras", "poses.txt",
                  "--output_dir", "out", cwd=tmp_path)
    assert result.returncode == 1
    assert "poses.txt: unknown poses file suffix" in result.stderr


def test_downscale_factor_evaluates_at_the_reduced_size_with_k_scaled(dataset, tmp_path):
    """--image_downscale_factor 2: renders and ground truth at half size; the render equals the
    scene rendered directly with K halved (so K was rescaled with the image)."""
    folder, _, _, poses, K = dataset
    result = _run("--scene", str(trained_ply_path()), "--cameras", str(folder / "val.json"),
                  "--output_dir", "out", "--image_downscale_factor", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    half_K = np.array(K, dtype=np.float64)
    half_K[:2] *= 0.5
    expected = to_uint8(render_image(read_scene(trained_ply_path()), invert_rigid(poses[0]), half_K,
                                     WIDTH // 2, HEIGHT // 2))
    assert _png(tmp_path / "out" / "gt" / "00000.png").shape == (HEIGHT // 2, WIDTH // 2, 3)
    np.testing.assert_array_equal(_png(tmp_path / "out" / "renders" / "00000.png"), expected)
    assert json.loads((tmp_path / "out" / "metrics.json").read_text())["val"]["psnr"] > 20.0


def test_a_scene_recording_its_training_resolution_is_evaluated_at_it(dataset, tmp_path):
    """A parquet scene trained at max-image-long-side 48 (no downscale factor): the camera JSON's
    96x72 images are evaluated at 48x36, as the trainer saw them, without any option."""
    folder, _, _, poses, K = dataset
    write_scene_parquet(tmp_path / "scene.parquet", read_scene(trained_ply_path()), TrainingResolution(1, 48))
    result = _run("--scene", "scene.parquet", "--cameras", str(folder / "val.json"), "--output_dir", "out",
                  cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "at the scene's training resolution: image-downscale-factor 1, max-image-long-side 48" in result.stdout
    half_K = np.array(K, dtype=np.float64)
    half_K[:2] *= 0.5
    expected = to_uint8(render_image(read_scene(tmp_path / "scene.parquet"), invert_rigid(poses[0]), half_K,
                                     WIDTH // 2, HEIGHT // 2))
    assert _png(tmp_path / "out" / "gt" / "00000.png").shape == (HEIGHT // 2, WIDTH // 2, 3)
    np.testing.assert_array_equal(_png(tmp_path / "out" / "renders" / "00000.png"), expected)


def test_width_and_height_render_every_pose_at_that_size_with_k_rescaled(dataset, tmp_path):
    folder, _, _, poses, K = dataset
    save_camera_path(tmp_path / "poses.pt", CameraPath(
        np.stack([invert_rigid(pose) for pose in poses]), np.stack([K] * VIEWS), WIDTH, HEIGHT))
    scaled_K = np.diag([2 * WIDTH / WIDTH, 30 / HEIGHT, 1.0]) @ np.asarray(K, dtype=np.float64)
    expected = to_uint8(render_image(read_scene(trained_ply_path()), invert_rigid(poses[1]), scaled_K, 2 * WIDTH, 30))
    result = _run("--scene", str(trained_ply_path()), "--cameras", "poses.pt", "--output_dir", "path",
                  "--width", str(2 * WIDTH), "--height", "30", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(_png(tmp_path / "path" / "renders" / "00001.png"), expected)
    # a camera JSON: --height alone keeps each pose's aspect, and no metrics are computed at that size
    result = _run("--scene", str(trained_ply_path()), "--cameras", str(folder / "val.json"), "--output_dir", "json",
                  "--height", str(HEIGHT // 2), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert _png(tmp_path / "json" / "renders" / "00000.png").shape == (HEIGHT // 2, WIDTH // 2, 3)
    assert not (tmp_path / "json" / "metrics.json").exists()
