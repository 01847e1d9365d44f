"""The labelled image grid TensorBoard shows for a val view: prediction | ground truth | depth |
error, the error in the Turbo colour map (A. Mikhailov, "Turbo, an improved rainbow colormap",
Google AI blog 2019; here its degree-5 polynomial fit by R. Du, the public shadertoy "Turbo
colormap approximation"), each panel labelled in a strip above it (Pillow's default font).
"""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image, ImageDraw

LABEL_HEIGHT = 12  # pixels of the strip above the panels that holds their labels

# Turbo's polynomial fit: channel c = sum_k TURBO_COEFFICIENTS[c][k] x^k, x in [0, 1].
TURBO_COEFFICIENTS = torch.tensor([
    [0.13572138, 4.61539260, -42.66032258, 132.13108234, -152.94239396, 59.28637943],
    [0.09140261, 2.19418839, 4.84296658, -14.18503333, 4.27729857, 2.82956604],
    [0.10667330, 12.64194608, -60.58204836, 110.36276771, -89.90310912, 27.34824973],
])


def turbo(values: torch.Tensor) -> torch.Tensor:
    """The Turbo colour of `values` (float [...], clamped to [0, 1]): float32 RGB [..., 3] in [0, 1]."""
    x = values.float().clamp(0.0, 1.0)
    powers = torch.stack([x ** k for k in range(TURBO_COEFFICIENTS.shape[1])], dim=-1)
    return (powers @ TURBO_COEFFICIENTS.to(x.device).T).clamp(0.0, 1.0)


def image_grid(prediction: torch.Tensor, target: torch.Tensor, depth: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
    """prediction | ground truth | depth | error side by side under their labels, float32
    [LABEL_HEIGHT + H, 4W, 3] in [0, 1] (CPU).

    Args:
        prediction, target: float32 [H, W, 3] in [0, 1].
        depth: float32 [H, W], camera z; alpha: float32 [H, W].

    Depth is grey, normalised by its largest value where alpha > 0.5 (near = dark, empty = black).
    The error is the mean over the channels of |prediction - target|, in Turbo from 0 (dark blue)
    to its largest value in the view (dark red), which the label gives.
    """
    valid = alpha > 0.5
    far = depth[valid].max() if bool(valid.any()) else depth.new_tensor(1.0)
    grey = (depth / far.clamp_min(1e-8)).clamp(0.0, 1.0) * valid
    error = (prediction - target).abs().mean(dim=-1)
    largest = float(error.max())
    panels = torch.cat([prediction, target, grey[..., None].expand(-1, -1, 3),
                        turbo(error / max(largest, 1e-8))], dim=1).cpu()
    height, width = prediction.shape[:2]
    strip = Image.new("RGB", (4 * width, LABEL_HEIGHT))
    draw = ImageDraw.Draw(strip)
    for index, label in enumerate(("prediction", "ground truth", "depth", f"error, max {largest:.3f}")):
        draw.text((index * width + 2, 0), label, fill=(255, 255, 255))
    labels = torch.from_numpy(np.asarray(strip, dtype=np.float32) / 255.0)
    return torch.cat([labels, panels.float()], dim=0)
