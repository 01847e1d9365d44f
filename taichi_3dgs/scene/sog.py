""".sog files: PlayCanvas's "Spatially Ordered Gaussians" bundle (meta.json version 2).

Layout (PlayCanvas SOG format documentation; splat-transform `write-sog.ts` / `read-sog.ts`):
an uncompressed ZIP of `meta.json` and lossless WebP images of W x H RGBA pixels, one pixel per
Gaussian in row-major order (W = ceil(sqrt(N) / 4) * 4, H = ceil(N / W / 4) * 4, the rest
unused). Gaussians are in Morton order (`quantisation.morton_order`).

    means_l.webp, means_u.webp  low and high bytes of 16-bit x, y, z, each the unit position of
                                v = sign(x) log(|x| + 1) between meta `means.mins` / `maxs`
    quats.webp                  "smallest three" of the unit quaternion (w, x, y, z order): RGB
                                255 * (q * sqrt(2) / 2 + 0.5), alpha 252 + index of the largest
    scales.webp                 RGB: indices into meta `scales.codebook` (256 log scales)
    sh0.webp                    RGB: indices into meta `sh0.codebook` (256 DC coefficients);
                                alpha: round(255 * sigmoid(opacity))
    shN_labels.webp             (SH degree > 0) 16-bit palette index, low byte R, high byte G
    shN_centroids.webp          (SH degree > 0) palette of meta `shN.count` entries, 64 to a row,
                                each K = 3, 8, 15 pixels wide: coefficient j's RGB are indices
                                into meta `shN.codebook` (256 values)

The palette has min(64, 2^floor(log2(N / 1024))) * 1024 entries as splat-transform chooses,
at most N (each Gaussian its own entry), found by k-means (`codebook.kmeans_palette`); the
codebooks by 1D k-means (`codebook.codebook_1d`). WebP alpha is written exactly (Pillow
`exact=True`), or the encoder could change the colour of pixels of alpha 0. The antialiased
flag travels as meta.json's `"taichi_3dgs": {"antialiased": true}`, which other readers ignore.
"""
from __future__ import annotations

import io
import json
import math
import os
import zipfile

import numpy as np

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.scene.codebook import codebook_1d, kmeans_palette
from taichi_3dgs.scene.gaussians import GaussianScene
from taichi_3dgs.scene.ply import check_linear_scene
from taichi_3dgs.scene.quantisation import (SceneArrays, arrays_to_scene, degree_bands,
                                            from_smallest_three, morton_sorted, read_bytes,
                                            sh_degree_of, smallest_three)

SOG_VERSION = 2
"""The meta.json version written and read (version 1, without the key, is refused)."""

_PALETTE_ROW = 64  # palette entries per row of shN_centroids.webp


def write_sog(path: str | os.PathLike, scene: GaussianScene) -> np.ndarray:
    """Write a linear-colour `scene` as a bundled .sog file (ZIP of WebP images + meta.json),
    atomically. Layout and quantisation: module docstring.

    Returns:
        [N] int64 file order: Gaussian i of the file is the scene's Gaussian `order[i]`.

    Raises:
        ValueError: `scene.validate()` fails, or the scene uses `sigmoid` colour. Nothing is
            written.
        OSError: the file cannot be written; the destination is left untouched.
    """
    check_linear_scene(path, scene, ".sog")
    arrays, order = morton_sorted(scene)
    n = len(order)
    width = max(4, math.ceil(math.sqrt(n) / 4) * 4)
    height = max(4, math.ceil(n / width / 4) * 4)

    def image(channels: list[np.ndarray]) -> bytes:
        pixels = np.zeros((width * height, 4), dtype=np.uint8)
        pixels[:, 3] = 255
        for i, values in enumerate(channels):
            pixels[:n, i] = values
        return _webp(pixels.reshape(height, width, 4))

    logs = np.sign(arrays.means) * np.log1p(np.abs(arrays.means))
    mins = logs.min(0) if n else np.zeros(3)
    maxs = logs.max(0) if n else np.zeros(3)
    extent = np.where(maxs > mins, maxs - mins, 1.0)
    means16 = np.clip(np.round((logs - mins) / extent * 65535.0), 0, 65535).astype(np.int64)
    largest, others = smallest_three(arrays.quats)
    quats = np.clip(np.round(255.0 * (others * np.sqrt(0.5) + 0.5)), 0, 255)
    scale_codebook, scale_labels = codebook_1d(arrays.log_scales)
    colour_codebook, colour_labels = codebook_1d(arrays.sh[:, 0])
    files = {
        "means_l.webp": image([means16[:, i] & 0xFF for i in range(3)]),
        "means_u.webp": image([means16[:, i] >> 8 for i in range(3)]),
        "quats.webp": image([quats[:, 0], quats[:, 1], quats[:, 2], 252 + largest]),
        "scales.webp": image([scale_labels[:, i] for i in range(3)]),
        "sh0.webp": image([colour_labels[:, i] for i in range(3)]
                          + [np.round(arrays.opacities * 255.0)]),
    }
    meta = {"version": SOG_VERSION, "asset": {"generator": "taichi_3dgs"}, "count": n,
            "means": {"mins": mins.tolist(), "maxs": maxs.tolist(),
                      "files": ["means_l.webp", "means_u.webp"]},
            "scales": {"codebook": scale_codebook.tolist(), "files": ["scales.webp"]},
            "quats": {"files": ["quats.webp"]},
            "sh0": {"codebook": colour_codebook.tolist(), "files": ["sh0.webp"]}}
    bands = degree_bands(arrays.sh_degree)
    if bands:
        meta["shN"] = _write_palette(arrays, bands, image, files)
    if arrays.antialiased:
        meta["taichi_3dgs"] = {"antialiased": True}
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as bundle:
        bundle.writestr("meta.json", json.dumps(meta))
        for name, data in files.items():
            bundle.writestr(name, data)
    return order


def _write_palette(arrays: SceneArrays, bands: int, image, files: dict) -> dict:
    """Cluster the higher SH bands into a palette; add its two images to `files`, return the
    meta.json `shN` entry."""
    n = len(arrays.means)
    # splat-transform's palette size: powers of two from 1024 (N >= 1024) to 65536 entries.
    size = int(min(64, 2 ** math.floor(math.log2(max(n, 1) / 1024))) * 1024)
    vectors = arrays.sh[:, 1:1 + bands].transpose(0, 2, 1).reshape(n, 3 * bands)
    centroids, labels = kmeans_palette(vectors, max(1, min(size, n)))
    codebook, codes = codebook_1d(centroids)
    count = len(centroids)
    rows = max(1, math.ceil(count / _PALETTE_ROW))
    palette = np.zeros((rows * _PALETTE_ROW, bands, 4), dtype=np.uint8)
    palette[..., 3] = 255
    palette[:count, :, :3] = codes.reshape(count, 3, bands).transpose(0, 2, 1)
    files["shN_centroids.webp"] = _webp(
        palette.reshape(rows, _PALETTE_ROW * bands, 4))
    files["shN_labels.webp"] = image([labels & 0xFF, labels >> 8])
    return {"count": count, "bands": arrays.sh_degree, "codebook": codebook.tolist(),
            "files": ["shN_centroids.webp", "shN_labels.webp"]}


def read_sog(path: str | os.PathLike) -> GaussianScene:
    """Read a bundled .sog file (meta.json version 2) into a linear-colour `GaussianScene` on the
    CPU, in the file's order. Decoding inverts the module docstring's quantisation.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: not a ZIP file, a truncated or corrupt member, no or unparsable meta.json,
            another meta.json version, a missing image or key, an image smaller than `count`
            pixels, a codebook or palette index out of range, or a quaternion tag outside
            252..255; the message names the file.
    """
    data = read_bytes(path)
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as bundle:
            members = {name: bundle.read(name) for name in bundle.namelist()}
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as error:
        raise ValueError(f"{path}: not a readable .sog bundle (expected a ZIP file: "
                         f"{error})") from error
    if "meta.json" not in members:
        raise ValueError(f"{path}: no meta.json in the .sog bundle")
    try:
        meta = json.loads(members["meta.json"].decode("utf-8"))
        return arrays_to_scene(path, _decode(path, meta, members))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: meta.json does not parse ({error})") from error
    except (KeyError, IndexError, TypeError) as error:
        raise ValueError(f"{path}: meta.json lacks or misstates an entry ({error!r}); expected "
                         f"the SOG version-2 layout") from error


def _decode(path: str | os.PathLike, meta: dict, members: dict[str, bytes]) -> SceneArrays:
    """Decode the images that `meta` names (module docstring)."""
    if meta.get("version") != SOG_VERSION:
        raise ValueError(f"{path}: SOG meta.json version {meta.get('version')}, expected "
                         f"{SOG_VERSION}")
    n = int(meta["count"])

    def pixels(name: str, count: int = n) -> np.ndarray:
        if name not in members:
            raise ValueError(f"{path}: {name} missing from the .sog bundle")
        rgba = _decode_webp(path, name, members[name]).reshape(-1, 4).astype(np.int64)
        if len(rgba) < count:
            raise ValueError(f"{path}: {name} has {len(rgba)} pixels, fewer than the {count} "
                             f"Gaussians of meta.json")
        return rgba[:count]

    def lookup(codebook: list, indices: np.ndarray, what: str) -> np.ndarray:
        table = np.asarray(codebook, dtype=np.float64)
        if indices.size and indices.max() >= len(table):
            raise ValueError(f"{path}: {what} index {int(indices.max())} beyond its "
                             f"{len(table)}-entry codebook")
        return table[indices]

    low, high = (pixels(name) for name in meta["means"]["files"][:2])
    mins, maxs = np.asarray(meta["means"]["mins"], float), np.asarray(meta["means"]["maxs"], float)
    logs = mins + (maxs - mins) * ((low[:, :3] | (high[:, :3] << 8)) / 65535.0)
    quats = pixels(meta["quats"]["files"][0])
    if n and not np.all((quats[:, 3] >= 252) & (quats[:, 3] <= 255)):
        raise ValueError(f"{path}: quats.webp alpha outside 252..255 (not a quaternion tag)")
    colour = pixels(meta["sh0"]["files"][0])
    bands = degree_bands(int(meta["shN"]["bands"])) if "shN" in meta else 0
    sh = np.zeros((n, 1 + bands, 3))
    sh[:, 0] = lookup(meta["sh0"]["codebook"], colour[:, :3], "sh0")
    if bands:
        sh[:, 1:] = _read_palette(path, meta["shN"], members, pixels, lookup, bands)
    return SceneArrays(
        means=np.sign(logs) * np.expm1(np.abs(logs)),
        quats=from_smallest_three(quats[:, 3] - 252, (quats[:, :3] / 255.0 - 0.5) / np.sqrt(0.5)),
        log_scales=lookup(meta["scales"]["codebook"], pixels(meta["scales"]["files"][0])[:, :3],
                          "scales"),
        opacities=colour[:, 3] / 255.0,
        sh=sh,
        sh_degree=sh_degree_of(path, bands),
        antialiased=meta.get("taichi_3dgs", {}).get("antialiased") is True,
    )


def _read_palette(path, entry: dict, members, pixels, lookup, bands: int) -> np.ndarray:
    """[N, bands, 3] higher SH coefficients from the palette images of meta `shN`."""
    count = int(entry["count"])
    labels = pixels(entry["files"][1])
    labels = labels[:, 0] | (labels[:, 1] << 8)
    if labels.size and labels.max() >= count:
        raise ValueError(f"{path}: shN label {int(labels.max())} beyond the {count}-entry palette")
    rows = math.ceil(count / _PALETTE_ROW)
    image = _decode_webp(path, entry["files"][0], members.get(entry["files"][0], b""))
    if image.shape[1] != _PALETTE_ROW * bands or image.shape[0] < rows:
        raise ValueError(f"{path}: {entry['files'][0]} is {image.shape[1]} x {image.shape[0]} "
                         f"pixels, expected {_PALETTE_ROW * bands} x {rows} for {count} entries "
                         f"of {bands} coefficients")
    palette = image[:rows].reshape(rows * _PALETTE_ROW, bands, 4)[:count, :, :3]
    return lookup(entry["codebook"], palette.astype(np.int64), "shN")[labels]


def _webp(pixels: np.ndarray) -> bytes:
    """[H, W, 4] uint8 RGBA as a lossless WebP that keeps every pixel's RGB (Pillow)."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGBA").save(buffer, format="WEBP", lossless=True, quality=75,
                                         method=4, exact=True)
    return buffer.getvalue()


def _decode_webp(path: str | os.PathLike, name: str, data: bytes) -> np.ndarray:
    """[H, W, 4] uint8 RGBA pixels of a WebP member."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "WEBP":
                raise ValueError(f"a {image.format} image")
            return np.asarray(image.convert("RGBA"))
    except (UnidentifiedImageError, OSError, ValueError) as error:
        raise ValueError(f"{path}: {name} is not a readable WebP image ({error})") from error
