"""Views: camera records with their images, decoded once and cached as uint8 (no Taichi here).

Each camera record's image is decoded once, downscaled by an integer factor (the training config's
`image-downscale-factor`, and further so that its long side is at most `max-image-long-side`, as
the official loader's 1600 px limit), and kept as uint8 [H, W, 3] or [H, W, 4] (RGBA) with K
rescaled to it. At every use it is converted to float [0, 1] and an RGBA image is composited over
the background colour of the moment, so a random background (official `--random_background`)
works with transparent images. A record's depth map (`depth_maps`), when asked for, is kept as
float32 [H, W] at the image's cached size. The trainer and the offline renderer's evaluation load images
through `load_view`, so both see the same pixels.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image

from taichi_3dgs.data.camera_checks import check_resampled_size
from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.data.depth_maps import read_depth_map, resize_depth_map
from taichi_3dgs.data.image_files import open_image

# Lanczos for colour (sharp, as ImageMagick's resize that made the official downscaled datasets);
# nearest for masks, which are labels. Pillow resizes RGBA with premultiplied alpha.
_COLOR_RESAMPLE = Image.Resampling.LANCZOS
_MASK_RESAMPLE = Image.Resampling.NEAREST


@dataclass
class View:
    """One camera with its cached image.

    Attributes:
        name: image file name (for metrics and logs).
        camera: the record with K, width and height rescaled to the cached image.
        image: uint8 [H, W, 3] or [H, W, 4] (RGBA, straight alpha), on the device (loaded once).
        mask: bool [H, W] (False = ignore the pixel in the loss) or None, on the device.
        viewmat: float32 [4, 4] world-to-camera; K: float32 [3, 3] pixels; both on the device.
        depth: float32 [H, W] on the device, the record's depth map in the units of its
            `camera.depth_type` (metric camera z in world units, or relative inverse depth), 0 where
            there is none; None when the record has no depth map or it was not loaded.
    """

    name: str
    camera: CameraRecord
    image: torch.Tensor
    mask: Optional[torch.Tensor]
    viewmat: torch.Tensor
    K: torch.Tensor
    depth: Optional[torch.Tensor] = None

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return self.image.shape[1]

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return self.image.shape[0]

    def target(self, background: torch.Tensor) -> torch.Tensor:
        """The ground-truth image as float32 [H, W, 3] in [0, 1] on background's device.

        An RGBA image is composited over background [3]: rgb * a + background * (1 - a).
        """
        return _composite(self.image, background)

    def colors_at(self, rows: torch.Tensor, cols: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
        """The ground-truth colours of pixels (rows[i], cols[i]) as float32 [M, 3] in [0, 1] on
        background's device, composited as `target` (without building the whole image).

        Args:
            rows, cols: [M] integer pixel indices (0 <= rows < height, 0 <= cols < width), any device.
        """
        return _composite(self.image[rows.to(self.image.device), cols.to(self.image.device)], background)


def _composite(pixels: torch.Tensor, background: torch.Tensor) -> torch.Tensor:
    """uint8 [..., 3] or [..., 4] (RGBA) pixels as float32 [..., 3] in [0, 1] on background's
    device, RGBA composited over background [3]: rgb * a + background * (1 - a)."""
    pixels = pixels.to(background.device).to(torch.float32) / 255.0
    if pixels.shape[-1] == 4:
        alpha = pixels[..., 3:]
        return pixels[..., :3] * alpha + background * (1.0 - alpha)
    return pixels


def target_size(width: int, height: int, downscale_factor: int, max_long_side: int) -> tuple[int, int]:
    """(width, height) after dividing by downscale_factor (rounded) and capping the long side."""
    w = max(1, round(width / downscale_factor))
    h = max(1, round(height / downscale_factor))
    long_side = max(w, h)
    if long_side > max_long_side:
        w = max(1, round(w * max_long_side / long_side))
        h = max(1, round(h * max_long_side / long_side))
    return w, h


def load_view(
    record: CameraRecord,
    downscale_factor: int,
    max_long_side: int,
    device: torch.device | str,
    what: str = "camera record",
    with_depth: bool = False,
) -> View:
    """Decode, resize and cache the image (and mask, and depth map) of one record.

    The image on disk may have another size than record.width x record.height (e.g. a
    downscaled copy): K is rescaled to it, provided the aspect ratio is the same
    (`cameras.check_resampled_size`, the check the converters apply). A mask and a depth map
    must have the size of the image on disk; both are resampled with it by nearest neighbour.

    Args:
        record: camera record; K refers to record.width x record.height (rescaled to the image).
        downscale_factor: integer >= 1 dividing the width and height of the image on disk.
        max_long_side: cap on the long side after downscaling, pixels.
        what: how error messages name the record (e.g. "train.json: record 3").
        with_depth: also load the record's depth map (`depth_maps.read_depth_map`), if it names
            one; otherwise View.depth is None.

    Raises:
        FileNotFoundError: the image, mask or (with_depth) depth file is missing.
        ValueError: a file cannot be decoded, the image's aspect ratio differs from the record's
            camera_width x camera_height, the mask's or depth map's size differs from the image's,
            or the depth map is not one (`read_depth_map`); the message names `what`, the field,
            the file and the sizes.
    """
    image_path = Path(record.image_path)
    image = open_image(image_path, what, "image_path")
    disk_size = image.size
    check_resampled_size(disk_size, (record.width, record.height), f"{what}: image_path {image_path}",
                         "camera_width x camera_height")
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    image = image.convert("RGBA" if has_alpha else "RGB")
    size = target_size(image.width, image.height, downscale_factor, max_long_side)
    if size != image.size:
        image = image.resize(size, _COLOR_RESAMPLE)
    mask = None
    if record.mask_path is not None:
        mask_image = open_image(Path(record.mask_path), what, "mask_path").convert("L")
        if mask_image.size != disk_size:
            raise ValueError(f"{what}: mask_path {record.mask_path} is {mask_image.width}x{mask_image.height} "
                             f"pixels but image_path {image_path} is {disk_size[0]}x{disk_size[1]}; "
                             "expected a mask of the image's size")
        if mask_image.size != size:
            mask_image = mask_image.resize(size, _MASK_RESAMPLE)
        mask = torch.from_numpy(np.asarray(mask_image) > 0).to(device)
    depth = None
    if with_depth and record.depth_path is not None:
        depth_map = read_depth_map(record.depth_path, record.depth_scale, what)
        if (depth_map.shape[1], depth_map.shape[0]) != disk_size:
            raise ValueError(f"{what}: depth_path {record.depth_path} is {depth_map.shape[1]}x{depth_map.shape[0]} "
                             f"pixels but image_path {image_path} is {disk_size[0]}x{disk_size[1]}; expected a "
                             "depth map of the image's size")
        depth = torch.from_numpy(resize_depth_map(depth_map, size)).to(device)
    camera = record.scaled(size[0], size[1])
    return View(
        name=Path(record.image_path).name,
        camera=camera,
        image=torch.from_numpy(np.array(image, dtype=np.uint8)).to(device),  # loaded to the device once
        mask=mask,
        viewmat=torch.tensor(camera.viewmat, dtype=torch.float32, device=device),
        K=torch.tensor(camera.K, dtype=torch.float32, device=device),
        depth=depth,
    )


def load_views(
    records: Sequence[CameraRecord],
    downscale_factor: int,
    max_long_side: int,
    device: torch.device | str,
    source: str = "cameras",
    with_depth: bool = False,
) -> list[View]:
    """`load_view` for every record; errors name `source` and the record index
    ("<source>: record <index>", as `read_cameras_json` names records)."""
    return [
        load_view(record, downscale_factor, max_long_side, device, f"{source}: record {index}", with_depth)
        for index, record in enumerate(records)
    ]
