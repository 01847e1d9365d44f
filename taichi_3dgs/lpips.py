"""LPIPS, the learned perceptual image distance (Zhang et al., CVPR 2018), AlexNet variant v0.1.

The metric of the `lpips` package (`lpips.LPIPS(net="alex", version="0.1")`, called with
`normalize=True` on images in [0, 1]), which gsplat's and most 3DGS evaluations report, in plain
torch: no torchvision, nothing downloaded. For images x0, x1 in [0, 1]:

1. x -> (2 x - 1 - shift) / scale per channel, shift = (-0.030, -0.088, -0.188), scale =
   (0.458, 0.448, 0.450) (the package's `ScalingLayer`: ImageNet statistics in [-1, 1] units);
2. AlexNet's convolutional features (torchvision's `alexnet().features`, ImageNet weights) at the
   five ReLUs, relu1..relu5: conv 11x11/4 (64) - relu1 - maxpool 3/2 - conv 5x5 (192) - relu2 -
   maxpool 3/2 - conv 3x3 (384) - relu3 - conv 3x3 (256) - relu4 - conv 3x3 (256) - relu5;
3. per layer l, each pixel's feature vector divided by its L2 norm (+ 1e-10), the squared
   difference of the two images' unit features, weighted by the learnt non-negative channel
   weights w_l (a 1x1 convolution to one channel) and averaged over the pixels;
4. LPIPS = the sum over the five layers (eq. 1 of the paper). 0 for identical images, symmetric;
   lower is more similar. Images need at least MIN_IMAGE_SIDE px on each side.

The weights come from ONE local file (`load_lpips`; layout in docs/FORMATS.md, "LPIPS weights";
`tools/make_lpips_weights.py` assembles it where the `lpips` and torchvision packages are
installed): a `torch.save`d state dict holding AlexNet's `features.{0,3,6,8,10}.{weight,bias}`
under torchvision's names and the package's `lin{0..4}.model.1.weight`.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

# ScalingLayer of the lpips package (v0.1): inputs in [-1, 1] minus shift, over scale.
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
# normalize_tensor's guard against zero feature vectors.
FEATURE_NORM_EPS = 1e-10
# The smallest image side (px) that leaves relu5 a feature pixel: conv1 (11/4, padding 2) and two
# 3/2 max pools.
MIN_IMAGE_SIDE = 31

# torchvision's AlexNet `features`: the index of each convolution in the Sequential, its output
# channels, input channels, kernel size, stride and padding; each is followed by a ReLU whose output
# is one LPIPS layer, the first two and the last also by a 3x3 max pool of stride 2 (after the
# ReLU, before the next convolution; the last pool is not used).
ALEXNET_CONVOLUTIONS = (  # (index, out, in, kernel, stride, padding, max pool before it)
    (0, 64, 3, 11, 4, 2, False),
    (3, 192, 64, 5, 1, 2, True),
    (6, 384, 192, 3, 1, 1, True),
    (8, 256, 384, 3, 1, 1, False),
    (10, 256, 256, 3, 1, 1, False),
)


def check_image_size(width: int, height: int, what: str) -> None:
    """Refuse an image LPIPS cannot score.

    Raises:
        ValueError: width or height below MIN_IMAGE_SIDE; the message starts with `what`.
    """
    if min(width, height) < MIN_IMAGE_SIDE:
        raise ValueError(f"{what}: LPIPS needs images of at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} px (AlexNet's "
                         f"relu5), got {width}x{height} px")


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """Every key an LPIPS weights file must hold, with its tensor shape."""
    shapes: dict[str, tuple[int, ...]] = {}
    for layer, (index, out, inp, kernel, _, _, _) in enumerate(ALEXNET_CONVOLUTIONS):
        shapes[f"features.{index}.weight"] = (out, inp, kernel, kernel)
        shapes[f"features.{index}.bias"] = (out,)
        shapes[f"lin{layer}.model.1.weight"] = (1, out, 1, 1)
    return shapes


class LPIPS:
    """The LPIPS AlexNet v0.1 distance with fixed weights (module docstring).

    Args:
        weights: every key of `expected_shapes()` with a finite float tensor of that shape (other
            keys are ignored).
        device: where the weights live and the images are scored (`self.device`).

    Raises:
        ValueError: a key is missing, or its value is not a finite float tensor of its shape.
    """

    def __init__(self, weights: dict[str, torch.Tensor], device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.weights = {}
        for key, shape in expected_shapes().items():
            value = weights.get(key)
            if value is None:
                raise ValueError(f"missing key {key!r} (a tensor of shape {list(shape)})")
            if not isinstance(value, torch.Tensor) or not value.is_floating_point() or tuple(value.shape) != shape:
                got = (f"{value.dtype} of shape {list(value.shape)}" if isinstance(value, torch.Tensor)
                       else type(value).__name__)
                raise ValueError(f"key {key!r} is {got}; expected a float tensor of shape {list(shape)}")
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f"key {key!r} holds NaN or infinite values")
            self.weights[key] = value.detach().to(device=device, dtype=torch.float32)
        self.shift = torch.tensor(LPIPS_SHIFT, device=device).view(1, 3, 1, 1)
        self.scale = torch.tensor(LPIPS_SCALE, device=device).view(1, 3, 1, 1)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """AlexNet's relu1..relu5 outputs ([B, C_l, H_l, W_l] float32) of images [B, 3, H, W] scaled as
        in step 1."""
        outputs = []
        x = images
        for index, _, _, _, stride, padding, pool in ALEXNET_CONVOLUTIONS:
            if pool:
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(F.conv2d(x, self.weights[f"features.{index}.weight"], self.weights[f"features.{index}.bias"],
                                stride=stride, padding=padding))
            outputs.append(x)
        return outputs

    @torch.no_grad()
    def __call__(self, image: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        """LPIPS distance between two images.

        Args:
            image, reference: [H, W, 3] float tensors in [0, 1] (the project's image layout), on
                the weights' device; H and W at least MIN_IMAGE_SIDE px.

        Returns:
            Scalar float32 tensor, >= 0 (0 for identical images).

        Raises:
            ValueError: the shapes differ, are not [H, W, 3], or are too small.
        """
        if image.shape != reference.shape or image.dim() != 3 or image.shape[-1] != 3:
            raise ValueError(f"LPIPS: expected two [H, W, 3] images of one shape, got {list(image.shape)} and "
                             f"{list(reference.shape)}")
        check_image_size(image.shape[1], image.shape[0], "LPIPS")
        pair = torch.stack([image, reference]).permute(0, 3, 1, 2).to(torch.float32)
        features = self.features((2.0 * pair - 1.0 - self.shift) / self.scale)
        total = torch.zeros((), device=pair.device)
        for layer, feature in enumerate(features):
            unit = feature / (feature.square().sum(dim=1, keepdim=True).sqrt() + FEATURE_NORM_EPS)
            difference = (unit[0] - unit[1]).square()  # [C, H_l, W_l]
            weight = self.weights[f"lin{layer}.model.1.weight"].view(-1, 1, 1)
            total = total + (weight * difference).sum(dim=0).mean()
        return total


def load_lpips(path: str | os.PathLike, device: torch.device | str = "cpu") -> LPIPS:
    """`LPIPS` with the weights of the file `path` (a `torch.save`d state dict, read with
    `torch.load(weights_only=True)`; layout in the module docstring).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: the file is not a torch state dict, or a key is missing or malformed; the
            message names the file.
    """
    path = Path(path)
    hint = "expected the LPIPS AlexNet weights file that tools/make_lpips_weights.py writes (docs/FORMATS.md)"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: LPIPS weights file not found; {hint}")
    try:
        weights = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch.load raises pickle, zip and runtime errors alike
        raise ValueError(f"{path}: not a torch state dict ({type(error).__name__}: {error}); {hint}") from None
    if not isinstance(weights, dict):
        raise ValueError(f"{path}: holds a {type(weights).__name__}, not a state dict; {hint}")
    try:
        return LPIPS(weights, device)
    except ValueError as error:
        raise ValueError(f"{path}: {error}; {hint}") from None
