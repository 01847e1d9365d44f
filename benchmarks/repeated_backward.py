"""Repeat the same forward+backward and count the runs whose gradients differ from the first
(not a test: a check to run on a GPU, where atomic float sums depend on thread timing).

For each `RasterizerConfig.blend_backward` ("atomic", "reproducible"): --repeats renders of gsplat's
garden scene (benchmarks/garden_scene.py, camera 0) with the loss sum(image * w) + sum(alpha), w
fixed random weights, and the gradients of the five parameter tensors and of means2d compared bit
for bit with the first run's. Prints per kernel how many runs differ and the largest relative
difference; exits 1 when a "reproducible" run differs.

    python benchmarks/repeated_backward.py                      # 648x420, 10 repeats
    python benchmarks/repeated_backward.py --width 1920 --height 1080 --tile 5
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from benchmarks.garden_scene import load_garden_scene  # noqa: E402
from benchmarks.rasterizer import DEFAULT_DATA, device_line  # noqa: E402
from taichi_3dgs import RasterizerConfig, init_taichi, rasterize  # noqa: E402
from taichi_3dgs.backend import torch_device  # noqa: E402
from taichi_3dgs.scene.gaussians import TENSOR_FIELDS  # noqa: E402


def gradients(scene: dict, weights: torch.Tensor, config: RasterizerConfig) -> dict:
    """Gradients of sum(image * weights) + sum(alpha) w.r.t. the parameters and means2d."""
    params = {name: scene[name].clone().requires_grad_(True) for name in TENSOR_FIELDS}
    out = rasterize(*(params[name] for name in TENSOR_FIELDS), scene["viewmat"], scene["K"], scene["width"],
                    scene["height"], sh_degree=3, config=config)
    ((out.image * weights).sum() + out.alpha.sum()).backward()
    return {**{name: params[name].grad for name in TENSOR_FIELDS}, "means2d": out.means2d.grad}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="path of gsplat's test_garden.npz")
    parser.add_argument("--width", type=int, default=648)
    parser.add_argument("--height", type=int, default=420)
    parser.add_argument("--tile", type=int, default=1, help="repeat the scene on a tile x tile grid (odd)")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    arch = init_taichi()
    device = torch_device()
    scene = load_garden_scene(args.data, tile=args.tile, width=args.width, height=args.height)
    scene = {name: value.to(device) if isinstance(value, torch.Tensor) else value for name, value in scene.items()}
    weights = torch.rand(args.height, args.width, 3, generator=torch.Generator().manual_seed(0)).to(device)
    print(device_line(arch))
    print(f"garden {args.width}x{args.height}, tiled {args.tile}x{args.tile}, {len(scene['means']):,} Gaussians, "
          f"{args.repeats} forward+backward passes per kernel")
    failed = False
    for blend_backward in ("atomic", "reproducible"):
        config = RasterizerConfig(blend_backward=blend_backward)
        first = gradients(scene, weights, config)
        differing, worst = 0, 0.0
        for _ in range(args.repeats - 1):
            again = gradients(scene, weights, config)
            if not all(torch.equal(first[name], again[name]) for name in first):
                differing += 1
            for name in first:
                scale = first[name].double().norm().clamp(min=1e-300)
                worst = max(worst, float((again[name].double() - first[name].double()).norm() / scale))
        verdict = "bit-identical" if differing == 0 else f"{differing} of {args.repeats - 1} repeats differ"
        print(f"{blend_backward:12s} {verdict}; largest relative L2 difference {worst:.1e}")
        failed |= blend_backward == "reproducible" and differing > 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
