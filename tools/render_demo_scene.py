#!/usr/bin/env python3
"""Render a procedurally generated Gaussian scene (a coloured sphere shell over a checkered
ground) with the Taichi rasterizer and save it as a PNG. Needs no dataset."""
import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from taichi_3dgs import rasterize  # noqa: E402
from taichi_3dgs.atomic_io import atomic_path  # noqa: E402
from taichi_3dgs.backend import torch_device  # noqa: E402

SH_C0 = 0.28209479177387814


def demo_gaussians(seed: int = 0) -> dict[str, torch.Tensor]:
    """About 20k Gaussians: a sphere shell of radius 1 at the origin coloured by normal, and a
    checkered ground plane at y = 1 (OpenCV-like world: y down)."""
    rng = np.random.default_rng(seed)
    dirs = rng.normal(size=(12000, 3))
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    ground = np.stack([rng.uniform(-3, 3, 8000), np.ones(8000), rng.uniform(-3, 3, 8000)], 1)
    checker = (np.floor(ground[:, 0] * 2) + np.floor(ground[:, 2] * 2)) % 2
    means = np.concatenate([dirs, ground]).astype(np.float32)
    colors = np.concatenate([0.5 + 0.5 * dirs, np.repeat(0.2 + 0.6 * checker[:, None], 3, 1)])
    n = len(means)
    sh = np.zeros((n, 16, 3), np.float32)
    sh[:, 0] = (colors - 0.5) / SH_C0
    return {
        "means": torch.from_numpy(means),
        "quats": torch.tensor([1.0, 0.0, 0.0, 0.0]).repeat(n, 1),
        "log_scales": torch.full((n, 3), math.log(0.03)),
        "opacity_logits": torch.full((n,), 2.0),
        "sh_coeffs": torch.from_numpy(sh),
    }


def look_at(eye: np.ndarray, target: np.ndarray, down: np.ndarray) -> torch.Tensor:
    """World-to-camera 4x4 for an OpenCV camera at `eye` looking at `target`."""
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(down, z)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    viewmat = np.eye(4, dtype=np.float32)
    viewmat[:3, :3] = np.stack([x, y, z])
    viewmat[:3, 3] = -viewmat[:3, :3] @ eye
    return torch.from_numpy(viewmat)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=Path("output/demo.png"))
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    args = parser.parse_args()
    device = torch_device()
    scene = {k: v.to(device) for k, v in demo_gaussians().items()}
    viewmat = look_at(np.array([2.5, -1.5, -3.5]), np.zeros(3), np.array([0.0, 1.0, 0.0])).to(device)
    f = 0.8 * args.width
    K = torch.tensor([[f, 0, args.width / 2], [0, f, args.height / 2], [0, 0, 1]], device=device)
    with torch.no_grad():
        out = rasterize(**scene, viewmat=viewmat, K=K, width=args.width, height=args.height,
                        sh_degree=0, background=torch.tensor([1.0, 1.0, 1.0], device=device))
    pixels = (out.image.clamp(0, 1) * 255).round().byte().cpu().numpy()
    with atomic_path(args.output) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")
    print(f"rendered {int((out.radii > 0).sum())} Gaussians ({out.num_pairs} tile pairs) -> {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
