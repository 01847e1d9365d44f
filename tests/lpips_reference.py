"""An independent LPIPS (AlexNet v0.1) for tests, and random weights files in taichi_3dgs's layout.

Built the way the `lpips` package builds it, from torch modules rather than from taichi_3dgs.lpips:
torchvision's `alexnet().features` written out as an nn.Sequential (so the `features.<i>` names
select the layers by position, as torchvision's), sliced after each ReLU as lpips'
`pretrained_networks.alexnet`, `lpips.normalize_tensor`, lpips' `NetLinLayer` (Dropout, then a 1x1
convolution without bias: `lin<l>.model.1.weight`) and `spatial_average`.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

CHANNELS = (64, 192, 384, 256, 256)


def _alexnet_features() -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2),
    )


def random_lpips_weights(seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict in the file layout: He-initialised AlexNet features, non-negative lin weights."""
    g = torch.Generator().manual_seed(seed)
    weights = {}
    for name, value in _alexnet_features().state_dict().items():
        fan_in = value[0].numel() if value.dim() == 4 else 1
        scale = (2.0 / fan_in) ** 0.5 if value.dim() == 4 else 0.1
        weights[f"features.{name}"] = torch.randn(value.shape, generator=g) * scale
    for layer, channels in enumerate(CHANNELS):
        weights[f"lin{layer}.model.1.weight"] = torch.rand(1, channels, 1, 1, generator=g)
    return weights


def write_random_lpips_weights(path: Path, seed: int = 0) -> Path:
    """torch.save(random_lpips_weights(seed)) to `path`; returns `path`."""
    torch.save(random_lpips_weights(seed), path)
    return path


def reference_lpips(weights: dict[str, torch.Tensor], image: torch.Tensor, reference: torch.Tensor) -> float:
    """LPIPS of two [H, W, 3] images in [0, 1], as lpips.LPIPS(net="alex")(x, y, normalize=True)."""
    features = _alexnet_features()
    features.load_state_dict({k[len("features."):]: v for k, v in weights.items() if k.startswith("features.")})
    slices = [features[0:2], features[2:5], features[5:8], features[8:10], features[10:12]]
    lins = []
    for layer, channels in enumerate(CHANNELS):
        lin = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, stride=1, padding=0, bias=False))
        lin.load_state_dict({"1.weight": weights[f"lin{layer}.model.1.weight"]})
        lins.append(lin.eval())
    shift = torch.tensor([-.030, -.088, -.188])[None, :, None, None]
    scale = torch.tensor([.458, .448, .450])[None, :, None, None]
    with torch.no_grad():
        h0, h1 = ((2 * x.permute(2, 0, 1)[None] - 1 - shift) / scale for x in (image, reference))
        total = 0.0
        for block, lin in zip(slices, lins):
            h0, h1 = block(h0), block(h1)
            n0 = h0 / (torch.sqrt(torch.sum(h0 ** 2, dim=1, keepdim=True)) + 1e-10)
            n1 = h1 / (torch.sqrt(torch.sum(h1 ** 2, dim=1, keepdim=True)) + 1e-10)
            total += float(lin((n0 - n1) ** 2).mean(dim=[2, 3]))
    return total
