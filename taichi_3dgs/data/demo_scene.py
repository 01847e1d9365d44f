"""A procedural demo scene, so that training needs no download.

A small numpy ray caster renders a checkered sphere, a striped box and a checkered ground square
(world frame: z up, units arbitrary, Lambertian shading under one directional light, no hit =
black) from a ring of cameras at two heights, with 2 x 2 supersampling, and the exact depth of
each view (camera z of the ray through each pixel centre, 0 where the ray hits nothing). It writes
the images, the depth maps (`depths/*.npy`, float32, named in the records with depth_type metric),
`train.json` / `val.json` (docs/FORMATS.md cameras; every 8th view to val, the official protocol)
and `point_cloud.parquet`: points sampled uniformly on the surfaces, coloured by the shaded
texture, with a little position noise, standing in for a structure-from-motion cloud.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.data.cameras import CameraRecord, write_cameras_json

GROUND_HALF_SIZE = 2.5
SPHERE_CENTRE = np.array([-0.5, 0.3, 0.7])
SPHERE_RADIUS = 0.7
BOX_MIN = np.array([0.4, -1.2, 0.0])
BOX_MAX = np.array([1.3, -0.3, 0.9])
LIGHT_DIRECTION = np.array([0.4, 0.3, 1.0]) / np.linalg.norm([0.4, 0.3, 1.0])
LOOK_AT = np.array([0.0, -0.2, 0.1])


@dataclass
class DemoSceneSpec:
    """Size of the demo scene: image size in pixels, number of views, surface points, seed."""

    width: int = 128
    height: int = 128
    num_views: int = 24
    num_points: int = 4000
    fov_degrees: float = 55.0
    ring_radius: float = 4.2
    seed: int = 0


def _shade(albedo: np.ndarray, normals: np.ndarray) -> np.ndarray:
    lambert = np.clip(normals @ LIGHT_DIRECTION, 0.0, None)
    return albedo * (0.35 + 0.65 * lambert)[..., None]


def _checker(a: np.ndarray, b: np.ndarray, colour0, colour1) -> np.ndarray:
    odd = (np.floor(a).astype(np.int64) + np.floor(b).astype(np.int64)) % 2 == 1
    return np.where(odd[..., None], np.asarray(colour1, float), np.asarray(colour0, float))


def surface_colour(points: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Shaded RGB in [0, 1] [M, 3] of surface points [M, 3] on primitive kind [M] (0 ground, 1 sphere, 2 box)."""
    colour = np.zeros_like(points)
    normals = np.zeros_like(points)
    ground = kind == 0
    p = points[ground]
    colour[ground] = _checker(p[:, 0] / 0.5, p[:, 1] / 0.5, (0.85, 0.83, 0.78), (0.22, 0.28, 0.45))
    normals[ground] = (0.0, 0.0, 1.0)
    sphere = kind == 1
    n = (points[sphere] - SPHERE_CENTRE) / SPHERE_RADIUS
    theta = np.arctan2(n[:, 1], n[:, 0])
    phi = np.arccos(np.clip(n[:, 2], -1.0, 1.0))
    colour[sphere] = _checker(theta / (np.pi / 5), phi / (np.pi / 6), (0.9, 0.3, 0.2), (0.95, 0.85, 0.3))
    normals[sphere] = n
    box = kind == 2
    p = points[box]
    centre = (BOX_MIN + BOX_MAX) / 2
    local = (p - centre) / ((BOX_MAX - BOX_MIN) / 2)
    axis = np.argmax(np.abs(local), axis=1)
    box_normals = np.zeros_like(p)
    box_normals[np.arange(len(p)), axis] = np.sign(local[np.arange(len(p)), axis])
    stripes = (np.floor((p[:, 0] + p[:, 1] + p[:, 2]) / 0.15).astype(np.int64) % 2 == 1)
    colour[box] = np.where(stripes[:, None], (0.15, 0.55, 0.3), (0.55, 0.85, 0.6))
    normals[box] = box_normals
    return np.clip(_shade(colour, normals), 0.0, 1.0)


def cast_rays(origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest hit of rays [M, 3] (unit directions) with the scene.

    Returns:
        hit [M] bool, points [M, 3] (world), kind [M] int (0 ground, 1 sphere, 2 box; -1 miss).
    """
    m = len(origins)
    best = np.full(m, np.inf)
    kind = np.full(m, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -origins[:, 2] / directions[:, 2]
        p = origins + t[:, None] * directions
        ok = (t > 1e-6) & (np.abs(p[:, 0]) <= GROUND_HALF_SIZE) & (np.abs(p[:, 1]) <= GROUND_HALF_SIZE)
        better = ok & (t < best)
        best[better], kind[better] = t[better], 0

        oc = origins - SPHERE_CENTRE
        b = np.einsum("ij,ij->i", oc, directions)
        c = np.einsum("ij,ij->i", oc, oc) - SPHERE_RADIUS**2
        disc = b * b - c
        t = -b - np.sqrt(np.where(disc > 0, disc, np.nan))
        better = (disc > 0) & (t > 1e-6) & (t < best)
        best[better], kind[better] = t[better], 1

        t1 = (BOX_MIN - origins) / directions
        t2 = (BOX_MAX - origins) / directions
        t_near = np.nanmax(np.minimum(t1, t2), axis=1)
        t_far = np.nanmin(np.maximum(t1, t2), axis=1)
        better = (t_near <= t_far) & (t_near > 1e-6) & (t_near < best)
        best[better], kind[better] = t_near[better], 2
    hit = kind >= 0
    points = origins + np.where(hit, best, 0.0)[:, None] * directions
    return hit, points, kind


def look_at_camera(eye: np.ndarray, target: np.ndarray, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """Camera-to-world [4, 4] with OpenCV axes (x right, y down, z forward) at eye, looking at target."""
    forward = (target - eye) / np.linalg.norm(target - eye)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, eye
    return c2w


def _cast_pixel_rays(c2w: np.ndarray, K: np.ndarray, width: int, height: int, supersample: int):
    """Rays through supersample x supersample points per pixel, row-major over the finer grid
    (a single ray through each pixel centre when supersample is 1); `cast_rays`' outputs."""
    s = supersample
    u = (np.arange(width * s) + 0.5) / s
    v = (np.arange(height * s) + 0.5) / s
    uu, vv = np.meshgrid(u, v)
    d_cam = np.stack([(uu - K[0, 2]) / K[0, 0], (vv - K[1, 2]) / K[1, 1], np.ones_like(uu)], -1).reshape(-1, 3)
    d_world = d_cam @ c2w[:3, :3].T
    d_world /= np.linalg.norm(d_world, axis=1, keepdims=True)
    return cast_rays(np.broadcast_to(c2w[:3, 3], d_world.shape), d_world)


def render_demo_view(c2w: np.ndarray, K: np.ndarray, width: int, height: int, supersample: int = 2) -> np.ndarray:
    """Render uint8 [height, width, 3] from camera-to-world c2w [4, 4] (OpenCV) and K [3, 3] pixels."""
    s = supersample
    hit, points, kind = _cast_pixel_rays(c2w, K, width, height, s)
    rgb = np.zeros_like(points)
    rgb[hit] = surface_colour(points[hit], kind[hit])
    rgb = rgb.reshape(height, s, width, s, 3).mean(axis=(1, 3))
    return np.round(rgb * 255.0).astype(np.uint8)


def render_depth(c2w: np.ndarray, K: np.ndarray, width: int, height: int) -> np.ndarray:
    """Exact depth float32 [height, width] of the ray through each pixel centre: the camera z
    (along the optical axis, world units) of its hit, 0 where it hits nothing."""
    hit, points, _ = _cast_pixel_rays(c2w, K, width, height, 1)
    z = (points - c2w[:3, 3]) @ c2w[:3, 2]  # the camera's forward axis in world coordinates
    return np.where(hit, z, 0.0).reshape(height, width).astype(np.float32)


def sample_surface_points(num_points: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Points [num_points, 3] spread over the three surfaces by area, and their kinds [num_points]."""
    box_size = BOX_MAX - BOX_MIN
    areas = np.array([
        (2 * GROUND_HALF_SIZE) ** 2,
        4 * np.pi * SPHERE_RADIUS**2,
        2 * (box_size[0] * box_size[1] + box_size[1] * box_size[2] + box_size[0] * box_size[2]),
    ])
    kind = rng.choice(3, size=num_points, p=areas / areas.sum())
    points = np.zeros((num_points, 3))
    g = kind == 0
    points[g, :2] = rng.uniform(-GROUND_HALF_SIZE, GROUND_HALF_SIZE, (g.sum(), 2))
    s = kind == 1
    n = rng.normal(size=(s.sum(), 3))
    points[s] = SPHERE_CENTRE + SPHERE_RADIUS * n / np.linalg.norm(n, axis=1, keepdims=True)
    b = np.nonzero(kind == 2)[0]
    face_areas = np.array([box_size[1] * box_size[2], box_size[0] * box_size[2], box_size[0] * box_size[1]])
    axis = rng.choice(3, size=len(b), p=face_areas / face_areas.sum())
    p = BOX_MIN + rng.uniform(size=(len(b), 3)) * box_size
    side = rng.integers(0, 2, len(b))
    p[np.arange(len(b)), axis] = np.where(side == 1, BOX_MAX[axis], BOX_MIN[axis])
    points[b] = p
    return points, kind


def make_demo_scene(output_dir: str | Path, spec: DemoSceneSpec = DemoSceneSpec()) -> Path:
    """Write the demo scene into output_dir: images/, depths/, train.json, val.json, point_cloud.parquet.

    Returns:
        output_dir as a Path.
    """
    # pandas loads here, not at import: tools/make_demo_scene.py reads DemoSceneSpec for --help.
    from taichi_3dgs.data.point_cloud import PointCloud, write_point_cloud

    output_dir = Path(output_dir).resolve()
    image_dir = output_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(spec.seed)
    focal = 0.5 * spec.width / np.tan(np.radians(spec.fov_degrees) / 2)
    K = np.array([[focal, 0.0, spec.width / 2], [0.0, focal, spec.height / 2], [0.0, 0.0, 1.0]])
    train, val = [], []
    for index in range(spec.num_views):
        angle = 2 * np.pi * index / spec.num_views
        height = 1.8 if index % 2 == 0 else 3.0
        eye = np.array([spec.ring_radius * np.cos(angle), spec.ring_radius * np.sin(angle), height])
        c2w = look_at_camera(eye, LOOK_AT)
        path = image_dir / f"view_{index:03d}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(render_demo_view(c2w, K, spec.width, spec.height)).save(tmp, format="PNG")
        depth_path = output_dir / "depths" / f"view_{index:03d}.npy"
        with atomic_path(depth_path) as tmp, open(tmp, "wb") as file:  # np.save(path) would add ".npy"
            np.save(file, render_depth(c2w, K, spec.width, spec.height))
        record = CameraRecord(image_path=path, K=K.copy(), T_pointcloud_camera=c2w, width=spec.width,
                              height=spec.height, camera_id=0, depth_path=depth_path, depth_type="metric")
        (val if index % 8 == 0 else train).append(record)
    write_cameras_json(output_dir / "train.json", train)
    write_cameras_json(output_dir / "val.json", val)

    points, kind = sample_surface_points(spec.num_points, rng)
    rgb = np.round(surface_colour(points, kind) * 255.0).astype(np.uint8)
    noisy = points + rng.normal(scale=0.01, size=points.shape)
    write_point_cloud(output_dir / "point_cloud.parquet", PointCloud(xyz=noisy.astype(np.float32), rgb=rgb))
    return output_dir
