"""Benchmark one full training step on a real capture, ours and gsplat's (not a test).

One step, as the trainer takes it: render one training view, loss (1 - lambda) L1 + lambda
(1 - SSIM) with lambda 0.2 (3DGS eq. 7; `taichi_3dgs.training.losses.l1_loss`,
`taichi_3dgs.metrics.ssim`), backward, one Adam step over the five parameter tensors (official
learning rates, `torch.optim.Adam`), and the densification statistics of gsplat's default strategy
(per visible Gaussian: the norm of its view-space gradient, scaled to NDC as gsplat does, and a
count). The Gaussians start on the capture's points (subsampled, or repeated with jitter, to
--gaussians): scales from the mean distance to their 3 nearest neighbours (official init),
identity rotations, opacity 0.1, SH DC from the point colours, higher bands 0, SH degree 3.

Prints the median step time (ms) after warm-up and its parts (render forward, loss, backward, Adam,
statistics), the rasterizer's stage times, and the same step with gsplat's CUDA `rasterization` in
the same run where torch sees a GPU (otherwise says it is skipped), with the ratio ours / gsplat.
Self-contained on purpose: it reads the scene through `taichi_3dgs.data` only, so it runs where
pycolmap is missing (a prepared folder, see --prepared) and does not follow trainer refactors.

    python benchmarks/training_step.py                                  # colmap_desk, 800 px, 100k Gaussians
    python benchmarks/training_step.py --long_side 1600 --gaussians 500000 --blend_backward reproducible
    python benchmarks/training_step.py --prepared .gpu_data/desk_prepared   # without pycolmap
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from benchmarks.rasterizer import DATASETS_DIR, Timer, device_line, stage_timing  # noqa: E402
from taichi_3dgs import RasterizerConfig, init_taichi, rasterize  # noqa: E402
from taichi_3dgs.backend import torch_device  # noqa: E402
from taichi_3dgs.color_model import NUM_SH_COEFFS, SH_C0  # noqa: E402
from taichi_3dgs.data.cameras import read_cameras_json  # noqa: E402
from taichi_3dgs.data.point_cloud import read_point_cloud  # noqa: E402
from taichi_3dgs.data.views import load_view  # noqa: E402
from taichi_3dgs.metrics import ssim  # noqa: E402
from taichi_3dgs.training.losses import l1_loss  # noqa: E402

SSIM_WEIGHT = 0.2  # 3DGS eq. 7 lambda
# Official 3DGS learning rates (means: the initial rate, times the scene extent as official).
LEARNING_RATES = {"means": 1.6e-4, "log_scales": 5e-3, "quats": 1e-3, "opacity_logits": 5e-2,
                  "sh_dc": 2.5e-3, "sh_rest": 2.5e-3 / 20}
PARTS = ("render", "loss", "backward", "adam", "statistics")


def prepared_folder(args: argparse.Namespace, scratch: Path) -> Path:
    """The prepared dataset to read: --prepared, or --colmap converted into `scratch` (pycolmap)."""
    if args.prepared is not None:
        return args.prepared
    from taichi_3dgs.data.colmap import convert_colmap  # needs pycolmap: imported only here

    return convert_colmap(args.colmap, scratch / "prepared").output_dir


def initial_gaussians(xyz: np.ndarray, rgb: np.ndarray | None, count: int, seed: int,
                      device: torch.device) -> dict:
    """Parameter tensors of `count` Gaussians on the points (module docstring), on `device`."""
    from scipy.spatial import cKDTree

    rng = np.random.default_rng(seed)
    rgb = np.full_like(xyz, 128, dtype=np.uint8) if rgb is None else rgb
    index = rng.choice(len(xyz), size=count, replace=count > len(xyz))
    means = xyz[index].astype(np.float32)
    if count > len(xyz):  # repeated points: jitter them by a small fraction of the scene size
        means += rng.normal(scale=1e-3 * float(np.ptp(xyz, axis=0).max()), size=means.shape).astype(np.float32)
    distances, _ = cKDTree(means).query(means, k=4)
    mean_sq = np.maximum((distances[:, 1:] ** 2).mean(axis=1), 1e-7)
    sh = np.zeros((count, NUM_SH_COEFFS, 3), dtype=np.float32)
    sh[:, 0] = (rgb[index] / 255.0 - 0.5) / SH_C0
    params = {
        "means": torch.from_numpy(means),
        "quats": torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(count, 1),
        "log_scales": torch.from_numpy(np.log(np.sqrt(mean_sq))).float()[:, None].repeat(1, 3),
        "opacity_logits": torch.full((count,), float(np.log(0.1 / 0.9))),
        "sh_coeffs": torch.from_numpy(sh),
    }
    return {name: value.to(device).contiguous().requires_grad_(True) for name, value in params.items()}


def make_adam(params: dict, extent: float) -> torch.optim.Adam:
    """torch Adam over the parameters with the official per-group rates (eps 1e-15)."""
    sh = params["sh_coeffs"]
    groups = [{"params": [params[name]], "lr": LEARNING_RATES[name] * (extent if name == "means" else 1.0)}
              for name in ("means", "log_scales", "quats", "opacity_logits")]
    # One tensor holds DC and rest: the rest's rate applies to both (a benchmark needs the cost,
    # not the official split).
    groups.append({"params": [sh], "lr": LEARNING_RATES["sh_rest"]})
    return torch.optim.Adam(groups, eps=1e-15)


def train_step(render, params: dict, target: torch.Tensor, adam, stats: dict, timer: Timer, parts: dict) -> None:
    """One step (module docstring); adds each part's ms to `parts`. render() -> (image [H, W, 3],
    means2d [N, 2] or [1, N, 2] retaining its grad, radii [N], 0 = culled)."""
    clock = [timer.now()]

    def lap(name):
        now = timer.now()
        parts[name] = parts.get(name, 0.0) + (now - clock[0]) * 1e3
        clock[0] = now

    image, means2d, radii = render()
    lap("render")
    loss = (1 - SSIM_WEIGHT) * l1_loss(image, target) + SSIM_WEIGHT * (1.0 - ssim(image, target))
    lap("loss")
    loss.backward()
    lap("backward")
    adam.step()
    adam.zero_grad(set_to_none=True)
    lap("adam")
    visible = radii > 0
    height, width = target.shape[:2]
    grad = means2d.grad.detach().reshape(-1, 2)[visible] * torch.tensor([width / 2.0, height / 2.0],
                                                                          device=means2d.device)
    stats["grad2d"][visible] += grad.norm(dim=-1)
    stats["count"][visible] += 1
    lap("statistics")


def timed_steps(render, params, target, adam, timer, runs: int, warmup: int) -> tuple[float, dict]:
    """(median step ms, mean ms per part) over `runs` steps after `warmup` steps."""
    n = params["means"].shape[0]
    device = params["means"].device
    stats = {"grad2d": torch.zeros(n, device=device), "count": torch.zeros(n, device=device)}
    for _ in range(warmup):
        train_step(render, params, target, adam, stats, timer, {})
    totals, parts = [], {}
    for _ in range(runs):
        start = timer.now()
        train_step(render, params, target, adam, stats, timer, parts)
        totals.append((timer.now() - start) * 1e3)
    return statistics.median(totals), {name: parts[name] / runs for name in PARTS}


def print_step(label: str, total: float, parts: dict) -> None:
    print(f"{label}: {total:.1f} ms per step (" + ", ".join(f"{name} {parts[name]:.1f}" for name in PARTS) + ")")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--colmap", type=Path, default=DATASETS_DIR / "colmap_desk",
                        help="COLMAP dataset, converted to a temporary prepared folder (needs pycolmap)")
    parser.add_argument("--prepared", type=Path, default=None,
                        help="prepared folder (train.json, point_cloud.parquet), instead of --colmap")
    parser.add_argument("--long_side", type=int, default=800, help="image long side in pixels (capture: 1906)")
    parser.add_argument("--gaussians", type=int, default=100_000)
    parser.add_argument("--view", type=int, default=0, help="index of the training view")
    parser.add_argument("--runs", type=int, default=5, help="timed steps (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (JIT compilation)")
    parser.add_argument("--blend_backward", choices=("atomic", "reproducible"), default="atomic",
                        help="RasterizerConfig.blend_backward (GPU layout only)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.long_side, args.gaussians, args.runs) < 1 or args.warmup < 0 or args.view < 0:
        parser.exit(1, "error: --long_side, --gaussians, --runs must be >= 1, --warmup and --view >= 0\n")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    arch = init_taichi()
    device = torch_device()
    timer = Timer(cuda=arch == "cuda")
    with tempfile.TemporaryDirectory() as scratch:
        folder = prepared_folder(args, Path(scratch))
        records = read_cameras_json(folder / "train.json")
        view = load_view(records[args.view % len(records)], 1, args.long_side, device)
        cloud = read_point_cloud(folder / "point_cloud.parquet")
    target = view.image.float() / 255.0
    height, width = target.shape[:2]
    extent = float(np.linalg.norm(cloud.xyz - cloud.xyz.mean(0), axis=1).max())
    config = RasterizerConfig(blend_backward=args.blend_backward)
    print(device_line(arch))
    print(f"scene: {folder.name}, view {view.name} at {width}x{height}, {args.gaussians:,} Gaussians "
          f"(on {len(cloud.xyz):,} points), blend_backward {args.blend_backward}")

    params = initial_gaussians(cloud.xyz, cloud.rgb, args.gaussians, args.seed, device)
    adam = make_adam(params, extent)

    def render_ours():
        out = rasterize(params["means"], params["quats"], params["log_scales"], params["opacity_logits"],
                        params["sh_coeffs"], view.viewmat, view.K, width, height, sh_degree=3, config=config)
        return out.image, out.means2d, out.radii

    ours, parts = timed_steps(render_ours, params, target, adam, timer, args.runs, args.warmup)
    print_step("taichi_3dgs step", ours, parts)
    stage_forward, stage_backward = {}, {}
    with stage_timing(timer, stage_forward, stage_backward):
        timed_steps(render_ours, params, target, adam, timer, args.runs, 0)
    print("rasterizer stages (mean ms per step; forward / backward):")
    for name, forward in stage_forward.items():
        print(f"  {name:18s} {forward / args.runs:9.1f} / {stage_backward.get(name, 0.0) / args.runs:9.1f}")

    if not torch.cuda.is_available():
        print("gsplat step: skipped (gsplat's rasterization needs CUDA; torch sees no GPU)")
        return
    from gsplat import rasterization

    gs_params = initial_gaussians(cloud.xyz, cloud.rgb, args.gaussians, args.seed, device)
    gs_adam = make_adam(gs_params, extent)

    def render_gsplat():
        image, _, info = rasterization(
            gs_params["means"], gs_params["quats"], torch.exp(gs_params["log_scales"]),
            torch.sigmoid(gs_params["opacity_logits"]), gs_params["sh_coeffs"], view.viewmat[None], view.K[None],
            width, height, sh_degree=3, eps2d=0.3, near_plane=0.01, far_plane=1e10, tile_size=16, packed=False)
        info["means2d"].retain_grad()
        radii = info["radii"][0]
        return image[0], info["means2d"], radii.amin(-1) if radii.dim() == 2 else radii  # 1.5: per-axis radii

    theirs, gs_parts = timed_steps(render_gsplat, gs_params, target, gs_adam, timer, args.runs, args.warmup)
    print_step("gsplat step", theirs, gs_parts)
    print(f"ours / gsplat: {ours / theirs:.2f}")


if __name__ == "__main__":
    main()
