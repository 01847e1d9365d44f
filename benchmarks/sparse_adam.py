"""Benchmark the optimizer step, dense Adam vs sparse Adam, on a scene mostly out of view (not a test).

Scene: gsplat's garden Gaussians (`benchmarks/garden_scene.py`) tiled on a --tile x --tile grid, so
camera 0 sees the central copy and parts of its neighbours (23 % of the Gaussians at --tile 5). One
forward+backward render from
camera 0 gives real gradients and radii; then the trainer's optimizer (`make_optimizer`: one group
per parameter, the official rates) steps on those gradients, `optimizer: adam` (every Gaussian)
and `optimizer: sparse-adam` (radius > 0 only). Prints the Gaussians, the visible fraction and
both step times side by side (median of --runs after --warmup steps, the two optimizers stepping in
turn, on the current device).

    python benchmarks/sparse_adam.py                 # garden tiled 5 x 5 (2.8 M Gaussians, 23 % in view)
    python benchmarks/sparse_adam.py --tile 9 --device cuda
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from benchmarks.garden_scene import load_garden_scene  # noqa: E402
from benchmarks.rasterizer import DEFAULT_DATA, Timer, device_line  # noqa: E402
from taichi_3dgs import init_taichi, rasterize  # noqa: E402
from taichi_3dgs.backend import torch_device  # noqa: E402
from taichi_3dgs.scene.model import GaussianModel  # noqa: E402
from taichi_3dgs.training.config import LearningRateConfig  # noqa: E402
from taichi_3dgs.training.optimization import make_optimizer  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="path of gsplat's test_garden.npz")
    parser.add_argument("--device", choices=("cpu", "cuda"), default=None,
                        help="Taichi/torch device (default: TAICHI_3DGS_ARCH, else cuda when torch sees a GPU)")
    parser.add_argument("--tile", type=int, default=5, help="repeat the scene on a tile x tile grid (odd)")
    parser.add_argument("--runs", type=int, default=9, help="timed steps per optimizer (median)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.tile < 1 or args.tile % 2 == 0:
        parser.exit(1, "error: --runs must be >= 1, --warmup >= 0, --tile odd and >= 1\n")
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        scene = load_garden_scene(args.data, tile=args.tile)
    except (FileNotFoundError, ValueError) as error:
        sys.exit(f"error: {error}")
    arch = init_taichi(args.device)
    timer = Timer(cuda=arch == "cuda")
    device = torch_device()
    model = GaussianModel(scene["means"], scene["quats"], scene["log_scales"], scene["opacity_logits"],
                          scene["sh_coeffs"], active_sh_degree=3).to(device)
    out = rasterize(model.means, model.quats, model.log_scales, model.opacity_logits, model.sh_coeffs,
                    scene["viewmat"].to(device), scene["K"].to(device), scene["width"], scene["height"], sh_degree=3)
    (out.image.sum() + out.alpha.sum()).backward()
    visible = out.radii > 0
    # Both optimizers step the same parameters on the same gradients, in turn, so a change of the
    # machine's load during the run hits both alike.
    dense, sparse = (make_optimizer(model, LearningRateConfig(), scene_extent=1.0, kind=kind)
                     for kind in ("adam", "sparse-adam"))
    steps = {"adam": dense.step, "sparse-adam": lambda: sparse.step(visible)}
    times: dict[str, list[float]] = {kind: [] for kind in steps}
    for run in range(args.warmup + args.runs):
        for kind, step in steps.items():
            start = timer.now()
            step()
            if run >= args.warmup:
                times[kind].append((timer.now() - start) * 1e3)

    print(device_line(arch))
    n, v = model.num_gaussians, int(visible.sum())
    print(f"garden tiled {args.tile}x{args.tile}, camera 0 at {scene['width']}x{scene['height']}: {n:,} Gaussians, "
          f"{v:,} visible ({100.0 * v / n:.1f} %)")
    dense_ms, sparse_ms = (statistics.median(times[kind]) for kind in steps)
    print(f"optimizer step (median of {args.runs}):  adam {dense_ms:.1f} ms   sparse-adam {sparse_ms:.1f} ms   "
          f"({dense_ms / sparse_ms:.1f}x)")

if __name__ == "__main__":
    main()
