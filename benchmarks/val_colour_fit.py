"""Val PSNR of a trained scene, plain and after an affine colour fit per val image (not a test).

A scene trained with exposure compensation is defined up to one affine colour transform: every
training image's transform can absorb it, so its colours need not match untouched val images
even when its geometry and relative colours are better. This script separates the two: per val
view it prints the mean of

- plain: PSNR of the render clamped to [0, 1] (what the trainer's metrics.json reports);
- half-fit: a 3x4 affine colour transform [A | b] fitted by least squares to the left half of the
  image, PSNR on the right half only (a stand-in for the official `--train_test_exp` evaluation,
  which learns each test image's exposure from its left half and scores its right half).

With `--per_view` it also prints, per val view, the plain PSNR and the photo's mean brightness over
the render's (mean of all pixels and channels): above 1 the scene renders that view darker than
the photo, which tells a colour drift of the scene from a photo exposed unlike the others.

    python benchmarks/val_colour_fit.py --scene output/desk/final_scene.parquet \\
        --cameras data/colmap_desk/val.json --image_downscale_factor 8
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from taichi_3dgs.data.cameras import read_cameras_json  # noqa: E402
from taichi_3dgs.data.views import load_views  # noqa: E402
from taichi_3dgs.metrics import psnr  # noqa: E402
from taichi_3dgs.rasterizer import RasterizerConfig  # noqa: E402
from taichi_3dgs.scene.model import load_initial_model  # noqa: E402
from taichi_3dgs.training.evaluation import render_model_view  # noqa: E402


def with_ones(image: torch.Tensor) -> torch.Tensor:
    """[H, W, 3] -> float64 [H * W, 4] rows (r, g, b, 1)."""
    pixels = image.reshape(-1, 3).to(torch.float64)
    return torch.cat([pixels, torch.ones_like(pixels[:, :1])], dim=1)


def half_fit_psnr(render: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR on the right half of `render` after the least-squares affine colour map of its left
    half onto `target`'s left half; both [H, W, 3] in [0, 1]."""
    half = render.shape[1] // 2
    transform = torch.linalg.lstsq(with_ones(render[:, :half]), target[:, :half].reshape(-1, 3).to(torch.float64)).solution
    right = (with_ones(render[:, half:]) @ transform).to(torch.float32).reshape(render[:, half:].shape)
    return float(psnr(right.clamp(0.0, 1.0), target[:, half:]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--scene", type=Path, required=True, help="trained scene (.parquet or .ply)")
    parser.add_argument("--cameras", type=Path, required=True, help="val camera JSON")
    parser.add_argument("--image_downscale_factor", type=int, default=1, help="as the training config's")
    parser.add_argument("--background", type=float, nargs=3, default=(0.0, 0.0, 0.0), help="background RGB")
    parser.add_argument("--per_view", action="store_true", help="print each view's PSNR and brightness ratio")
    args = parser.parse_args()
    model = load_initial_model(args.scene)
    views = load_views(read_cameras_json(args.cameras), args.image_downscale_factor, 1600, "cpu", str(args.cameras))
    background = torch.tensor(args.background, dtype=torch.float32)
    config = RasterizerConfig(color_activation=model.color_activation, antialiased=model.antialiased)
    plain, fitted = [], []
    for view in views:
        with torch.no_grad():
            render = render_model_view(model, view, config, background).image.clamp(0.0, 1.0)
        target = view.target(background)
        plain.append(float(psnr(render, target)))
        fitted.append(half_fit_psnr(render, target))
        if args.per_view:
            print(f"{view.name}: PSNR plain {plain[-1]:.2f} dB, photo / render brightness "
                  f"{float(target.mean() / render.mean()):.3f}")
    print(f"{args.scene}: {len(views)} val views, PSNR plain {sum(plain) / len(plain):.2f} dB, "
          f"half-fit {sum(fitted) / len(fitted):.2f} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
