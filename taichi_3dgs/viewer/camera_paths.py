"""Camera poses for viewing and fly-through videos: look-at, a scene's up direction and frame, a
camera fitted to a scene's bounds, an orbit around a point, and the elliptical path around a
capture's focus point.

All poses are float64 [4, 4] camera-to-world matrices `T_world_camera` with OpenCV camera axes
(x right, y down, z forward), as `T_pointcloud_camera` in the camera JSON (docs/FORMATS.md); the
camera's "up" is its -y axis. `viewmat = inverse(T_world_camera)`.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from taichi_3dgs.rotations import axis_angle_to_matrix
from taichi_3dgs.viewer.geometry import rigid_transform

DEFAULT_FOV_X_DEGREES = 60.0
"""Horizontal field of view of the viewer's own camera when no dataset camera is given."""

BOUNDS_PERCENTILE = 90.0
"""Trained scenes carry far-away floaters; the scene radius is this percentile of the distances
of the means from their median, not the maximum."""

FALLBACK_UP = np.array([0.0, -1.0, 0.0])
"""Up when neither cameras nor the points tell: world -y, the up of a camera with identity
rotation, which is how COLMAP reconstructions (world frame = their first camera's) and most
scenes converted from them stand."""

ORBIT_ELEVATION_DEGREES = 25.0
"""The first view and the headless orbit without dataset cameras look down at the scene centre
from this angle above its horizontal plane (the plane normal to `scene_up`): high enough to see the
ground and the tops of objects instead of passing edge-on through the ground, low enough to see
their sides; a person filming a scene on the ground or a table holds the camera about as high."""

FLATNESS_RATIO = 0.25
"""`scene_up` trusts the least-variance axis of the means only when its variance is at most this
fraction of the middle one (a standard deviation at most half as large): the scene is then clearly
flatter along it than along any horizontal direction."""

SYMMETRY_TOLERANCE = 0.05
"""`scene_up` calls the heights along the flat axis symmetric, so the side of "up" undecided, when
the two tails (10th to 50th and 50th to 90th percentile) differ by at most this fraction of the
10-90 percentile range."""

EMPTY_SCENE_BOUNDS = (np.zeros(3), 1.0)
"""(center, radius) that `scene_bounds` gives a scene without Gaussians: the unit sphere about the
world origin (world units). Nothing is there to frame, so any sphere serves the overview camera and
the viewer's movement step, as long as it is not degenerate."""

_ARC_SAMPLES = 4096  # dense samples of the ellipse for its arc length (constant-speed frames)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Camera-to-world pose of a camera at `eye` looking at `target`, its -y axis towards `up`.

    Args:
        eye, target: [3] world points (distinct).
        up: [3] world direction, not parallel to target - eye.

    Returns:
        [4, 4] float64 T_world_camera: z = normalize(target - eye), x = normalize(z x up)
        (right-handed OpenCV frame with y = z x x pointing away from `up`).

    Raises:
        ValueError: eye == target, or up parallel to the viewing direction.
    """
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    forward = target - eye
    if np.linalg.norm(forward) < 1e-12:
        raise ValueError(f"look_at: eye and target coincide at {eye.tolist()}")
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9 * max(1.0, np.linalg.norm(up)):
        raise ValueError(f"look_at: up {up.tolist()} is parallel to the viewing direction")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return rigid_transform(np.stack([right, down, forward], axis=1), eye)


def pinhole_intrinsics(width: int, height: int, fov_x_degrees: float = DEFAULT_FOV_X_DEGREES
                       ) -> np.ndarray:
    """[3, 3] float64 K with square pixels, the principal point at the image centre and the
    given horizontal field of view (fx = fy = width / (2 tan(fov_x / 2)))."""
    focal = width / (2.0 * math.tan(math.radians(fov_x_degrees) / 2.0))
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def scene_bounds(means: torch.Tensor) -> tuple[np.ndarray, float]:
    """Robust centre and radius of a set of Gaussian means.

    Args:
        means: [N, 3] float tensor, world frame; N may be 0.

    Returns:
        (center [3] float64 = per-axis median, radius = `BOUNDS_PERCENTILE` percentile of the
        distances to the centre, at least 1e-6). An empty scene (N = 0) has no extent to measure:
        it gets `EMPTY_SCENE_BOUNDS`, so cameras fitted to it look at the world origin from a few
        units away and show the background instead of failing.
    """
    points = means.detach().double().cpu()
    if len(points) == 0:
        return EMPTY_SCENE_BOUNDS[0].copy(), EMPTY_SCENE_BOUNDS[1]
    center = points.median(dim=0).values
    distances = torch.linalg.norm(points - center, dim=1)
    radius = float(torch.quantile(distances, BOUNDS_PERCENTILE / 100.0))
    return center.numpy(), max(radius, 1e-6)


def scene_up(means: torch.Tensor) -> np.ndarray:
    """The up direction of a scene guessed from its Gaussian means alone (no cameras).

    Rule: a captured scene mostly stands on a support surface (ground, floor, table) that covers
    more area than anything else and that nothing lies below, since cameras do not see under it.
    So (1) the scene is flattest along up: the axis of least variance of the means (PCA of the
    means within the `scene_bounds` radius, which leaves out far floaters and the background
    shell), and (2) along that axis most points lie at the bottom (the surface) and the rest rises
    above it (objects), so the heights have their long tail upwards: up points to the side where
    the 50th to 90th percentile span is longer than the 10th to 50th (Bowley's quantile skewness,
    robust to the outliers that the third moment is not).

    Limits: a scene that is not clearly flat (least variance above `FLATNESS_RATIO` of the middle
    one: a single object, an isotropic or forward-facing cloud, random initial points) or whose
    heights are symmetric (`SYMMETRY_TOLERANCE`: an empty flat ground, a room with floor and
    ceiling equally seen) falls back to `FALLBACK_UP` (the axis, or for symmetric heights its
    sign). A scene flattest along a horizontal direction (a facade, a long wall, a tall thin
    object) gets a horizontal up; a scene seen from below, mostly a ceiling or canopy, gets up
    upside down. Dataset cameras (`mean_up`) are the better source when they exist.

    Args:
        means: [N, 3] float tensor of Gaussian centres, world frame; for N = 0, `FALLBACK_UP`.

    Returns:
        [3] float64 unit vector in world coordinates.
    """
    points = means.detach().double().cpu().numpy()
    if len(points) == 0:
        return FALLBACK_UP.copy()
    center, radius = scene_bounds(means)
    core = points[np.linalg.norm(points - center, axis=1) <= radius]
    deviations = core - core.mean(axis=0)
    variances, axes = np.linalg.eigh(deviations.T @ deviations)  # ascending
    if not (variances[1] > 0 and variances[0] <= FLATNESS_RATIO * variances[1]):
        return FALLBACK_UP.copy()
    axis = axes[:, 0]
    low, median, high = np.quantile(core @ axis, [0.1, 0.5, 0.9])
    skew = (high - median) - (median - low)
    if abs(skew) <= SYMMETRY_TOLERANCE * (high - low):
        return axis if axis @ FALLBACK_UP >= 0 else -axis
    return axis if skew > 0 else -axis


def fit_camera_to_bounds(center: np.ndarray, radius: float, width: int, height: int,
                         fov_x_degrees: float = DEFAULT_FOV_X_DEGREES, *,
                         up: np.ndarray = FALLBACK_UP, elevation_degrees: float = 0.0
                         ) -> tuple[np.ndarray, np.ndarray]:
    """A camera that sees the whole sphere (center, radius), upright for `up`, looking down at
    the centre from `elevation_degrees` above the plane normal to `up`.

    Its horizontal direction from the centre is world -z projected onto that plane, or world -y
    when `up` is within 30 degrees of the z axis. With the defaults (up world -y, elevation 0) it
    takes the world axes as its own (identity rotation: looking along +z with -y up), the pose of
    the first camera of a COLMAP reconstruction.

    Args:
        center: [3] world point the camera looks at.
        radius: sphere radius (world units), > 0.
        width, height: image size in pixels.
        fov_x_degrees: horizontal field of view.
        up: [3] world direction that appears upwards in the image (normalised here).
        elevation_degrees: angle of the viewing ray below the horizontal plane, in (-90, 90).

    Returns:
        (T_world_camera [4, 4] float64, K [3, 3] float64): the camera at distance
        d = radius / sin(smaller half field of view) from the centre, so the sphere touches the
        nearer image borders.

    Raises:
        ValueError: `up` of zero length, or the elevation outside (-90, 90) degrees.
    """
    up = np.asarray(up, dtype=np.float64)
    if np.linalg.norm(up) < 1e-12:
        raise ValueError(f"up: expected a non-zero direction, got {up.tolist()}")
    if not -90.0 < elevation_degrees < 90.0:
        raise ValueError(f"elevation: expected an angle in (-90, 90) degrees, got {elevation_degrees}")
    up = up / np.linalg.norm(up)
    K = pinhole_intrinsics(width, height, fov_x_degrees)
    half_fov = min(math.atan(width / (2.0 * K[0, 0])), math.atan(height / (2.0 * K[1, 1])))
    distance = radius / math.sin(half_fov)
    reference = np.array([0.0, 0.0, -1.0]) if abs(up[2]) < math.cos(math.radians(30.0)) \
        else np.array([0.0, -1.0, 0.0])
    back = reference - (reference @ up) * up
    back /= np.linalg.norm(back)
    elevation = math.radians(elevation_degrees)
    center = np.asarray(center, dtype=np.float64)
    eye = center + distance * (math.cos(elevation) * back + math.sin(elevation) * up)
    return look_at(eye, center, up), K


def overview_camera(means: torch.Tensor, width: int, height: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The camera that first shows a scene when no dataset cameras are given.

    `fit_camera_to_bounds` of the `scene_bounds` sphere, upright for `scene_up` and
    `ORBIT_ELEVATION_DEGREES` above the scene's horizontal plane.

    Args:
        means: [N, 3] float tensor of Gaussian centres, world frame; N = 0 gives the camera of
            `EMPTY_SCENE_BOUNDS` and `FALLBACK_UP`.
        width, height: image size in pixels.

    Returns:
        (T_world_camera [4, 4], K [3, 3], center [3], up [3]), float64: the pose, the intrinsics
        (`DEFAULT_FOV_X_DEGREES`), the scene centre it looks at and the scene's unit up direction.
    """
    center, radius = scene_bounds(means)
    up = scene_up(means)
    T_world_camera, K = fit_camera_to_bounds(center, radius, width, height, up=up,
                                             elevation_degrees=ORBIT_ELEVATION_DEGREES)
    return T_world_camera, K, center, up


def orbit_path(T_world_camera: np.ndarray, center: np.ndarray, up: np.ndarray, n_frames: int
               ) -> np.ndarray:
    """Frames of one full turn of a camera around the axis through `center` along `up`.

    Frame k is the start pose rotated by 2 pi k / n_frames about that axis (right-hand rule), so
    the camera keeps its distance, height and view of the centre.

    Args:
        T_world_camera: [4, 4] start pose (frame 0).
        center: [3] point on the rotation axis.
        up: [3] axis direction.
        n_frames: number of frames, >= 1 (the last frame stops one step short of the start).

    Returns:
        [n_frames, 4, 4] float64 camera-to-world poses.

    Raises:
        ValueError: n_frames < 1 or up of zero length.
    """
    if n_frames < 1:
        raise ValueError(f"n_frames: expected >= 1, got {n_frames}")
    center = np.asarray(center, dtype=np.float64)
    poses = []
    for k in range(n_frames):
        rotation = axis_angle_to_matrix(up, 2.0 * math.pi * k / n_frames)
        eye = center + rotation @ (T_world_camera[:3, 3] - center)
        poses.append(rigid_transform(rotation @ T_world_camera[:3, :3], eye))
    return np.stack(poses)


def focus_point(T_world_cameras: np.ndarray) -> np.ndarray:
    """The point closest (least squares) to all cameras' optical axes.

    Minimises sum_i || (I - d_i d_i^T) (p - o_i) ||^2 over p, for camera centres o_i and unit
    viewing directions d_i (the cameras' z axes): p = (sum_i M_i)^-1 sum_i M_i o_i with
    M_i = I - d_i d_i^T (multinerf / nerfstudio `focus_point_fn`, used by the official 3DGS
    render path).

    Args:
        T_world_cameras: [C, 4, 4] camera-to-world poses, C >= 2.

    Returns:
        [3] float64 world point.

    Raises:
        ValueError: fewer than 2 cameras, or all optical axes (nearly) parallel.
    """
    poses = np.asarray(T_world_cameras, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) < 2:
        raise ValueError(f"focus point: expected [C >= 2, 4, 4] camera poses, got shape {list(poses.shape)}")
    directions = poses[:, :3, 2] / np.linalg.norm(poses[:, :3, 2], axis=1, keepdims=True)
    projectors = np.eye(3) - directions[:, :, None] * directions[:, None, :]
    lhs = projectors.sum(axis=0)
    if np.linalg.cond(lhs) > 1e8:
        raise ValueError("focus point: the cameras' optical axes are (nearly) parallel, so no "
                         "point is closest to all of them")
    return np.linalg.solve(lhs, np.einsum("cij,cj->i", projectors, poses[:, :3, 3]))


def mean_up(T_world_cameras: np.ndarray) -> np.ndarray:
    """[3] float64 unit mean of the cameras' up directions (-y axes in OpenCV convention).

    Raises:
        ValueError: the up directions cancel out.
    """
    up = -np.asarray(T_world_cameras, dtype=np.float64)[:, :3, 1].mean(axis=0)
    norm = np.linalg.norm(up)
    if norm < 1e-9:
        raise ValueError("mean up: the cameras' up directions cancel out")
    return up / norm


def scene_frame(means: torch.Tensor | None, T_world_cameras: np.ndarray | None
                ) -> tuple[np.ndarray, float, np.ndarray]:
    """Centre, radius and up of a scene with or without Gaussians and cameras (the web viewer
    orbits about it and sizes frustums and gizmos by it).

    Centre and radius: the means' `scene_bounds`, else the camera centres' mean and their largest
    distance from it (1 when that is 0), else the origin and 1. Up: the cameras' `mean_up`, else
    (no cameras, or their ups cancel out) `scene_up` of the means, else `FALLBACK_UP`.

    Args:
        means: [N, 3] float tensor of Gaussian means, world frame, or None (no Gaussians).
        T_world_cameras: [C >= 1, 4, 4] camera-to-world poses, or None (no cameras).

    Returns:
        (center [3] float64, radius, unit up [3] float64).
    """
    if means is not None:
        center, radius = scene_bounds(means)
    elif T_world_cameras is not None:
        centres = np.asarray(T_world_cameras, dtype=np.float64)[:, :3, 3]
        center = centres.mean(axis=0)
        radius = float(np.linalg.norm(centres - center, axis=1).max()) or 1.0
    else:
        center, radius = np.zeros(3), 1.0
    up = None
    if T_world_cameras is not None:
        try:
            up = mean_up(T_world_cameras)
        except ValueError:  # the cameras' ups cancel out: ask the points
            up = None
    if up is None:
        up = scene_up(means) if means is not None else FALLBACK_UP.copy()
    return np.asarray(center, dtype=np.float64), float(radius), up


def ellipse_path(T_world_cameras: np.ndarray, n_frames: int) -> np.ndarray:
    """A closed, constant-speed elliptical path around the cameras' focus point.

    Follows the official 3DGS / multinerf `generate_ellipse_path`, without their PCA
    re-orientation of the world: "up" u is `mean_up`, the path lies in the plane normal to u at
    the cameras' mean height above the focus point f, centred over f, with axes along the
    principal directions of the cameras' offsets in that plane. Each semi-axis is sqrt(2) times
    the root-mean-square offset along its axis: exact for cameras spread evenly over an ellipse
    (the mean of cos^2 over a turn is 1/2), and unlike multinerf's 90th percentile of absolute
    coordinates it does not depend on the principal directions when the cameras' spread is
    isotropic (a ring), where those directions are arbitrary. Frames are spaced at equal arc
    length, start at the angle of the first camera and every frame looks at f with its -y axis
    towards u.

    Args:
        T_world_cameras: [C, 4, 4] camera-to-world poses of the capture, C >= 2.
        n_frames: number of frames, >= 1.

    Returns:
        [n_frames, 4, 4] float64 camera-to-world poses.

    Raises:
        ValueError: see `focus_point` / `mean_up`; n_frames < 1; the cameras all lie on the axis
            through f along u (no ellipse).
    """
    if n_frames < 1:
        raise ValueError(f"n_frames: expected >= 1, got {n_frames}")
    poses = np.asarray(T_world_cameras, dtype=np.float64)
    focus, up = focus_point(poses), mean_up(poses)
    offsets = poses[:, :3, 3] - focus
    heights = offsets @ up
    planar = offsets - heights[:, None] * up
    seed = np.eye(3)[np.argmin(np.abs(up))]
    basis = np.stack([np.cross(up, seed), np.cross(up, np.cross(up, seed))])
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    coords = planar @ basis.T  # [C, 2] in an arbitrary orthonormal basis of the plane
    _, eigenvectors = np.linalg.eigh(coords.T @ coords)
    axes = eigenvectors[:, ::-1].T @ basis  # [2, 3] principal directions, major first
    principal = planar @ axes.T
    semi_axes = np.sqrt(2.0 * np.mean(principal ** 2, axis=0))
    if semi_axes.max() < 1e-9 * max(1.0, np.abs(offsets).max()):
        raise ValueError("ellipse path: every camera lies on the vertical axis through the focus "
                         "point, so there is no orbit to follow")
    semi_axes = np.maximum(semi_axes, 1e-3 * semi_axes.max())
    center = focus + heights.mean() * up
    start = math.atan2(principal[0, 1] / semi_axes[1], principal[0, 0] / semi_axes[0])

    def positions(angles: np.ndarray) -> np.ndarray:
        return (center + semi_axes[0] * np.cos(angles)[:, None] * axes[0]
                + semi_axes[1] * np.sin(angles)[:, None] * axes[1])

    dense = start + np.linspace(0.0, 2.0 * math.pi, _ARC_SAMPLES + 1)
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(positions(dense), axis=0), axis=1))])
    angles = np.interp(np.arange(n_frames) * arc[-1] / n_frames, arc, dense)
    return np.stack([look_at(eye, focus, up) for eye in positions(angles)])
