"""Decoding the image files camera records name (images, masks, depth maps), with errors naming them."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

IMAGE_FILE_EXPECTED = "an image file Pillow reads (PNG, JPEG, ...)"


def open_image(path: Path, what: str, field: str, expected: str = IMAGE_FILE_EXPECTED) -> Image.Image:
    """Open and decode the image file `path` with Pillow.

    Args:
        path: the file.
        what: how error messages name the record (e.g. "train.json: record 3").
        field: the record's field that names the file (e.g. "mask_path").
        expected: what the messages say was expected.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: Pillow cannot decode it (or it is a decompression bomb); the messages name
            `what`, `field` and the file.
    """
    try:
        image = Image.open(path)
        image.load()
    except FileNotFoundError:
        raise FileNotFoundError(f"{what}: {field} {path} not found; expected {expected}") from None
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{what}: {field} {path}: cannot decode: {exc}; expected {expected}") from None
    return image
