"""Trainable Gaussian scene: the docs/FORMATS.md parameters as `torch.nn.Parameter`s.

Initialisation from a point cloud follows the official 3DGS `GaussianModel.create_from_pcd`
(graphdeco-inria `scene/gaussian_model.py`): SH DC = (rgb - 0.5) / C0 with the other SH
coefficients zero, isotropic log-scale = log(sqrt(mean squared distance to the 3 nearest
neighbours)) (official `simple_knn.distCUDA2`, clamped at 1e-7), identity rotation and opacity 0.1.

The SH coefficients are held as two parameters, `sh_dc` [N, 1, 3] and `sh_rest` [N, 15, 3], because
the official optimizer gives them different learning rates; `sh_coeffs` concatenates them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from scipy.spatial import KDTree
from torch import nn

from taichi_3dgs.color_model import COLOR_ACTIVATIONS, NUM_SH_COEFFS, SH_C0, num_sh_coeffs
from taichi_3dgs.data.point_cloud import PointCloud, read_point_cloud
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.io import read_scene
from taichi_3dgs.scene.parquet import is_trained_scene_parquet
PARAMETER_NAMES = ("means", "quats", "log_scales", "opacity_logits", "sh_dc", "sh_rest")


def mean_knn_squared_distance(xyz: np.ndarray, num_neighbours: int = 3) -> np.ndarray:
    """Mean squared distance of each point to its `num_neighbours` nearest other points.

    An exact k-d tree search (scipy, in float64 on the float32 points; the official
    `simple_knn.distCUDA2` searches boxes of Morton-ordered points on the GPU). A point's
    duplicates count as neighbours at distance 0.

    Args:
        xyz: [N, 3] float points (N >= 2), rounded to float32 as the model stores them.
        num_neighbours: neighbours per point (fewer if N - 1 is smaller).

    Returns:
        [N] float32, clamped below at 1e-7 as the official code (duplicated points would give 0).

    Raises:
        ValueError: fewer than 2 points.
    """
    points = np.asarray(xyz, dtype=np.float32).reshape(-1, 3)
    if len(points) < 2:
        raise ValueError(f"nearest neighbours: need at least 2 points, got {len(points)}")
    k = min(num_neighbours, len(points) - 1)
    # The nearest hit of a point is itself (or a duplicate, also at 0): ask for hits 2..k+1.
    distances, _ = KDTree(points).query(points, k=list(range(2, k + 2)), workers=-1)
    return np.maximum((distances ** 2).mean(axis=1), 1e-7).astype(np.float32)


class GaussianModel(nn.Module):
    """The trainable Gaussians (docs/FORMATS.md "Gaussian parameters").

    Parameters (float32, on one device):
        means [N, 3] world units; quats [N, 4] w, x, y, z (unnormalised); log_scales [N, 3];
        opacity_logits [N]; sh_dc [N, 1, 3] and sh_rest [N, 15, 3] (official SH order, DC first).

    Attributes:
        color_activation: "linear" (official) or "sigmoid" (scenes of the original project).
        active_sh_degree: SH degree currently rendered (0..3); training raises it.
        antialiased: rendered with the Mip-Splatting 2D filter (`GaussianScene.antialiased`); the
            trainer sets it from its rasterizer config, and `to_scene` passes it on.
    """

    def __init__(
        self,
        means: torch.Tensor,
        quats: torch.Tensor,
        log_scales: torch.Tensor,
        opacity_logits: torch.Tensor,
        sh_coeffs: torch.Tensor,
        color_activation: str = "linear",
        active_sh_degree: int = 0,
        antialiased: bool = False,
    ):
        super().__init__()
        n = means.shape[0]
        expected = {"means": (n, 3), "quats": (n, 4), "log_scales": (n, 3), "opacity_logits": (n,),
                    "sh_coeffs": (n, NUM_SH_COEFFS, 3)}
        given = {"means": means, "quats": quats, "log_scales": log_scales, "opacity_logits": opacity_logits,
                 "sh_coeffs": sh_coeffs}
        for name, shape in expected.items():
            if tuple(given[name].shape) != shape:
                raise ValueError(f"GaussianModel: {name} has shape {tuple(given[name].shape)}, expected {shape}")
        if color_activation not in COLOR_ACTIVATIONS:
            raise ValueError(f"GaussianModel: color_activation is {color_activation!r}, expected linear or sigmoid")
        as_param = lambda t: nn.Parameter(t.detach().to(torch.float32).contiguous())  # noqa: E731
        self.means = as_param(means)
        self.quats = as_param(quats)
        self.log_scales = as_param(log_scales)
        self.opacity_logits = as_param(opacity_logits)
        self.sh_dc = as_param(sh_coeffs[:, :1])
        self.sh_rest = as_param(sh_coeffs[:, 1:])
        self.color_activation = color_activation
        self.active_sh_degree = active_sh_degree
        self.antialiased = antialiased

    @property
    def num_gaussians(self) -> int:
        """N, the current number of Gaussians."""
        return self.means.shape[0]

    @property
    def sh_coeffs(self) -> torch.Tensor:
        """All SH coefficients [N, 16, 3] (differentiable concatenation of sh_dc and sh_rest)."""
        return torch.cat([self.sh_dc, self.sh_rest], dim=1)

    def parameter_dict(self) -> dict[str, nn.Parameter]:
        """The parameters by name (PARAMETER_NAMES order)."""
        return {name: getattr(self, name) for name in PARAMETER_NAMES}

    def set_parameter(self, name: str, value: torch.Tensor) -> nn.Parameter:
        """Replace parameter `name` by a new Parameter holding `value` (rows may differ); return it."""
        param = nn.Parameter(value.detach().contiguous())
        setattr(self, name, param)
        return param

    @classmethod
    def from_point_cloud(
        cls,
        cloud: PointCloud,
        initial_opacity: float = 0.1,
        num_neighbours: int = 3,
        seed: int = 0,
        device: torch.device | str = "cpu",
        extra_points: PointCloud | None = None,
    ) -> "GaussianModel":
        """New Gaussians at the points of `cloud`, as the official `create_from_pcd`.

        Args:
            cloud: xyz [N, 3] (N >= 2) and rgb [N, 3] uint8, or rgb None: then random colours
                drawn uniformly in [0, 1] with `seed`.
            initial_opacity: opacity of every Gaussian, in (0, 1).
            num_neighbours: neighbours of the isotropic scale estimate.
            extra_points: M more points with colours (e.g. `data.background_points`), appended
                after the cloud's (rows N..N+M-1) and initialised by the same rule; the nearest
                neighbours are then searched among all N + M points. None: the cloud alone.

        Raises:
            ValueError: fewer than 2 points, non-finite coordinates, or all points identical (zero
                extent: every nearest-neighbour scale would be the 1e-7 floor); extra_points
                without colours or with non-finite coordinates.
        """
        xyz = np.asarray(cloud.xyz, dtype=np.float32)
        if xyz.ndim != 2 or xyz.shape[1] != 3:
            raise ValueError(f"point cloud: points have shape {xyz.shape}; expected [N, 3]")
        if len(xyz) < 2:
            raise ValueError(f"point cloud: has {len(xyz)} point(s); need at least 2 to initialise Gaussians")
        if not np.isfinite(xyz).all():
            raise ValueError("point cloud: coordinates contain NaN or inf")
        if not np.ptp(xyz, axis=0).any():
            raise ValueError(f"point cloud: all {len(xyz)} points are identical ({xyz[0].tolist()}), a scene of "
                             "zero extent; expected points spread over the scene's surfaces")
        if cloud.rgb is None:
            rgb = np.random.default_rng(seed).random((len(xyz), 3), dtype=np.float32)
        else:
            rgb = np.asarray(cloud.rgb, dtype=np.float32) / 255.0
        if extra_points is not None:
            if extra_points.rgb is None:
                raise ValueError("extra points: have no colours; expected rgb for every added point")
            if not np.isfinite(extra_points.xyz).all():
                raise ValueError("extra points: coordinates contain NaN or inf")
            xyz = np.concatenate([xyz, extra_points.xyz])
            rgb = np.concatenate([rgb, np.asarray(extra_points.rgb, dtype=np.float32) / 255.0])
        n = len(xyz)
        sh = np.zeros((n, NUM_SH_COEFFS, 3), dtype=np.float32)
        sh[:, 0, :] = (rgb - 0.5) / SH_C0
        log_scales = np.log(np.sqrt(mean_knn_squared_distance(xyz, num_neighbours)))
        quats = np.zeros((n, 4), dtype=np.float32)
        quats[:, 0] = 1.0
        logit = float(np.log(initial_opacity / (1.0 - initial_opacity)))
        tensor = lambda a: torch.tensor(a, dtype=torch.float32, device=device)  # noqa: E731
        return cls(
            tensor(xyz),
            tensor(quats),
            tensor(np.repeat(log_scales[:, None], 3, axis=1)),
            torch.full((n,), logit, dtype=torch.float32, device=device),
            tensor(sh),
            color_activation="linear",
            active_sh_degree=0,
        )

    @classmethod
    def from_scene(cls, scene: GaussianScene, device: torch.device | str = "cpu") -> "GaussianModel":
        """Trainable copy of a loaded scene; its SH degree becomes the active degree, its colour
        activation and `antialiased` flag are kept.

        Raises:
            ValueError: `scene.validate()` fails (names the field).
        """
        scene.validate()
        scene = scene.to(device)
        return cls(
            scene.means,
            scene.quats,
            scene.log_scales,
            scene.opacity_logits,
            scene.sh_coeffs,
            color_activation=scene.color_activation,
            active_sh_degree=int(scene.sh_degree),
            antialiased=scene.antialiased,
        )

    @torch.no_grad()
    def to_scene(self, device: torch.device | str = "cpu") -> GaussianScene:
        """A detached copy of the parameters on `device` as a GaussianScene of the active SH degree.

        Coefficients of bands above the active degree are not rendered, so they are written as
        zeros (GaussianScene requires it); they stay zero during training anyway, since they get
        no gradient.
        """
        copy = lambda t: t.detach().to(device, torch.float32).clone()  # noqa: E731
        sh = copy(self.sh_coeffs)
        sh[:, num_sh_coeffs(self.active_sh_degree):, :] = 0.0
        return GaussianScene(
            means=copy(self.means),
            quats=copy(self.quats),
            log_scales=copy(self.log_scales),
            opacity_logits=copy(self.opacity_logits),
            sh_coeffs=sh,
            sh_degree=self.active_sh_degree,
            color_activation=self.color_activation,
            antialiased=self.antialiased,
        )


def load_initial_model(
    path: str | Path,
    initial_opacity: float = 0.1,
    num_neighbours: int = 3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    extra_points: Callable[[PointCloud], PointCloud] | None = None,
) -> GaussianModel:
    """The model a training run starts from.

    A `.ply` file (official layout) or a parquet with all trained-scene columns is a warm start:
    loaded as is. Any other parquet is a point cloud (`x, y, z[, r, g, b]`) and is initialised by
    `GaussianModel.from_point_cloud`, with the points `extra_points(cloud)` returns added (the
    trainer's `initial-points`) when it is given.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is not a readable scene or point cloud, or gives no Gaussian to train
            (a scene without Gaussians; see `GaussianModel.from_point_cloud` for point clouds);
            `extra_points` is given for a warm start; the message names the file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: point cloud / scene file not found")
    if path.suffix.lower() == ".ply" or is_trained_scene_parquet(path):
        if extra_points is not None:
            raise ValueError(f"{path}: is a trained scene, which training continues as it is; initial points "
                             "(initial-points) are added to point clouds only: set their counts to 0, or start "
                             "from a point cloud")
        model = GaussianModel.from_scene(read_scene(path), device)
        if model.num_gaussians == 0:
            raise ValueError(f"{path}: the scene has no Gaussian; expected a trained scene to continue from")
        return model
    cloud = read_point_cloud(path)
    try:
        extra = None if extra_points is None else extra_points(cloud)
        return GaussianModel.from_point_cloud(cloud, initial_opacity, num_neighbours, seed, device, extra)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None
