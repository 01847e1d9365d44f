"""Initial isotropic scales: mean squared distance to the 3 nearest other points (official
`distCUDA2`), found with scipy, without trimesh (the optional mesh extra)."""
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO_ROOT, dataset_path

from taichi_3dgs.data.colmap import read_colmap_model
from taichi_3dgs.scene.model import mean_knn_squared_distance


def _brute_force(xyz: np.ndarray, k: int) -> np.ndarray:
    """Mean of the k smallest squared distances to the other points, all pairs in float64."""
    points = xyz.astype(np.float32).astype(np.float64)
    result = np.empty(len(points))
    for start in range(0, len(points), 512):
        block = points[start:start + 512]
        squared = ((block[:, None, :] - points[None]) ** 2).sum(-1)
        squared[np.arange(len(block)), np.arange(start, start + len(block))] = np.inf  # not itself
        result[start:start + len(block)] = np.sort(squared, axis=1)[:, :k].mean(axis=1)
    return np.maximum(result, 1e-7)


def test_real_colmap_cloud_matches_the_all_pairs_search():
    reconstruction = read_colmap_model(dataset_path("colmap_table_txt") / "sparse" / "0")
    xyz = np.array([point.xyz for point in reconstruction.points3D.values()])
    assert len(xyz) == 3036
    result = mean_knn_squared_distance(xyz)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, _brute_force(xyz, 3), rtol=1e-6)


def test_duplicates_count_at_distance_zero_and_full_overlap_is_clamped():
    xyz = np.array([[0.0, 0, 0], [0.0, 0, 0], [1.0, 0, 0], [3.0, 0, 0]])
    np.testing.assert_allclose(mean_knn_squared_distance(xyz), [10 / 3, 10 / 3, 2.0, 22 / 3], rtol=1e-6)
    four_copies = np.concatenate([np.zeros((4, 3)), [[5.0, 0, 0]]])
    np.testing.assert_allclose(mean_knn_squared_distance(four_copies)[:4], 1e-7, rtol=1e-6)


def test_tiny_clouds_use_every_other_point_and_one_point_is_an_error():
    two = np.array([[0.0, 0, 0], [0.0, 2, 0]])
    np.testing.assert_allclose(mean_knn_squared_distance(two), [4.0, 4.0])
    three = np.array([[0.0, 0, 0], [0.0, 2, 0], [0.0, 0, 1]])
    np.testing.assert_allclose(mean_knn_squared_distance(three), [2.5, 4.5, 3.0])
    with pytest.raises(ValueError, match="at least 2 points"):
        mean_knn_squared_distance(np.zeros((1, 3)))


def test_training_imports_and_initialises_without_trimesh():
    code = ("import sys; sys.modules['trimesh'] = None  # import trimesh raises ImportError\n"
            "import json\n"
            "import numpy as np\n"
            "import taichi_3dgs.training.trainer\n"
            "from taichi_3dgs.data.point_cloud import PointCloud\n"
            "from taichi_3dgs.scene.model import GaussianModel\n"
            "xyz = np.array([[0, 0, 0], [0, 2, 0], [0, 0, 1]], dtype=np.float32)\n"
            "model = GaussianModel.from_point_cloud(PointCloud(xyz=xyz, rgb=None))\n"
            "print(json.dumps(model.log_scales[:, 0].tolist()))\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    scales = json.loads(result.stdout.strip().splitlines()[-1])
    np.testing.assert_allclose(scales, np.log(np.sqrt([2.5, 4.5, 3.0])), rtol=1e-6)
