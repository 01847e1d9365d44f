"""A small demo scene for the pose-optimisation and exposure-compensation tests.

`demo` is the procedural demo scene at 64 x 64 px with 3,000 points; `rendered_scene` turns it into
a scene whose images are renders of the Gaussians a run starts from, so a run with the true
cameras starts at its optimum and what the camera corrections learn comes from the perturbations
put in: training camera PERTURBED_CAMERA off by 1 degree and 1 % of the scene extent, training
image GAIN_IMAGE with colours c -> GAIN c + OFFSET. Test modules import the fixtures they use.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from test_trainer import demo_config

from taichi_3dgs import RasterizerConfig
from taichi_3dgs.data.cameras import read_cameras_json, write_cameras_json
from taichi_3dgs.data.demo_scene import DemoSceneSpec, make_demo_scene
from taichi_3dgs.data.views import load_views
from taichi_3dgs.scene.model import load_initial_model
from taichi_3dgs.scene.parquet import write_scene_parquet
from taichi_3dgs.training.config import TrainConfig
from taichi_3dgs.training.evaluation import render_model_view

DEMO_EXTENT = 4.68  # scene_extent of the demo scene's training cameras


PERTURBED_CAMERA = 2  # training camera whose pose rendered_scene perturbs
GAIN_IMAGE = 1  # training image rendered_scene gives GAIN and OFFSET
GAIN = np.array([0.6, 0.7, 0.8])
OFFSET = np.array([0.1, 0.05, 0.0])


def random_pose(rng: np.random.Generator) -> np.ndarray:
    """A random camera-to-world [4, 4] (uniform rotation, centre within a few units)."""
    pose = np.eye(4)
    pose[:3, :3] = Rotation.random(random_state=rng.integers(1 << 31)).as_matrix()
    pose[:3, 3] = rng.normal(size=3) * 3.0
    return pose


def perturbation(rotation_degrees: float, translation: float) -> np.ndarray:
    """A fixed camera-frame perturbation [[R, t], [0, 1]] with |R| and |t| as given."""
    delta = np.eye(4)
    axis = np.array([0.36, -0.8, 0.48])
    delta[:3, :3] = Rotation.from_rotvec(np.radians(rotation_degrees) * axis / np.linalg.norm(axis)).as_matrix()
    direction = np.array([0.6, -0.48, 0.64])
    delta[:3, 3] = translation * direction / np.linalg.norm(direction)
    return delta


def scipy_transform(correction: np.ndarray) -> np.ndarray:
    """[[R, t], [0, 1]] of a correction (t, w), R from scipy's rotation vector."""
    transform = np.eye(4)
    transform[:3, :3] = Rotation.from_rotvec(correction[3:]).as_matrix()
    transform[:3, 3] = correction[:3]
    return transform


def pose_error(pose: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """(rotation error in degrees, camera-centre distance) between camera-to-world poses."""
    rotation = Rotation.from_matrix(truth[:3, :3].T @ pose[:3, :3]).magnitude()
    return float(np.degrees(rotation)), float(np.linalg.norm(pose[:3, 3] - truth[:3, 3]))


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    """The demo scene at 64 x 64 px, 3,000 points."""
    return make_demo_scene(tmp_path_factory.mktemp("demo"), DemoSceneSpec(width=64, height=64, num_points=3000))


@pytest.fixture(scope="module")
def rendered_scene(demo, tmp_path_factory) -> Path:
    """A scene whose images are its own renders, so its start is the optimum for true cameras:
    scene.parquet (the demo cloud at opacity 0.8), train.json with training camera
    PERTURBED_CAMERA moved 1 degree and 1 % of the extent and image GAIN_IMAGE given GAIN and
    OFFSET, true_train.json and val.json (true cameras, untouched renders)."""
    root = tmp_path_factory.mktemp("rendered")
    model = load_initial_model(demo / "point_cloud.parquet", initial_opacity=0.8)
    write_scene_parquet(root / "scene.parquet", model.to_scene())
    (root / "images").mkdir()
    for split in ("train", "val"):
        records = read_cameras_json(demo / f"{split}.json")
        rendered = []
        for record, view in zip(records, load_views(records, 1, 1600, "cpu")):
            with torch.no_grad():
                image = render_model_view(model, view, RasterizerConfig(), torch.zeros(3)).image.clamp(0.0, 1.0).numpy()
            path = root / "images" / view.name
            Image.fromarray(np.round(image * 255.0).astype(np.uint8)).save(path)
            rendered.append(dataclasses.replace(record, image_path=path))
        write_cameras_json(root / f"{'true_train' if split == 'train' else 'val'}.json", rendered)
    train = read_cameras_json(root / "true_train.json")
    image = np.asarray(Image.open(train[GAIN_IMAGE].image_path), dtype=np.float64) / 255.0
    gained = root / "gained.png"
    Image.fromarray(np.round(np.clip(image * GAIN + OFFSET, 0.0, 1.0) * 255.0).astype(np.uint8)).save(gained)
    train[GAIN_IMAGE] = dataclasses.replace(train[GAIN_IMAGE], image_path=gained)
    record = train[PERTURBED_CAMERA]
    train[PERTURBED_CAMERA] = dataclasses.replace(
        record, T_pointcloud_camera=record.T_pointcloud_camera @ perturbation(1.0, 0.01 * DEMO_EXTENT))
    write_cameras_json(root / "train.json", train)
    return root


def camera_config(scene: Path, out: Path, features: bool, **overrides) -> TrainConfig:
    """42 steps (two passes over the 21 views), no densification, both features on or off."""
    data = {
        "num-iterations": 42, "val-interval": 21, "checkpoint-interval": 1000,
        "adaptive-controller-config": {"num-iterations-warm-up": 1000},
        "logging": {"progress-bar": False, "log-loss-interval": 7},
        "pose-optimization": features, "exposure-compensation": features,
        "pose-optimization-config": {"learning-rate": 1e-3, "learning-rate-final": 1e-4},
    }
    data.update(overrides)
    return demo_config(scene, out, point_cloud="scene.parquet", **data)
