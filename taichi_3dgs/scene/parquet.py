"""Trained-scene parquet files: one row per Gaussian (docs/FORMATS.md "Point-cloud parquet").

The column names are those of the original Taichi project (`GaussianPointCloudScene.to_parquet`):
`x, y, z`, `cov_q0..3` (quaternion x, y, z, w), `cov_s0..2` (log std-dev), `alpha0` (opacity
logit), `r_sh0..15`, `g_sh0..15`, `b_sh0..15`. Files written here also carry file-level key-value
metadata (format version, colour activation, SH degree); a trained-scene file without it is one of
the original project's and is read as `sigmoid` colour with SH degree 3. The optional key
`taichi_3dgs.antialiased` records whether the scene was trained with the Mip-Splatting 2D filter;
files without it (older taichi_3dgs versions, the original project) are read as not antialiased.
The optional key `taichi_3dgs.training_resolution` records the image size the scene was trained
at (`TrainingResolution`), which the renderer uses by default.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.color_model import COLOR_ACTIVATIONS, MAX_SH_DEGREE, NUM_SH_COEFFS
from taichi_3dgs.scene.gaussians import GaussianScene, checked_float32

TRAINED_SCENE_COLUMNS = (
    ["x", "y", "z"]
    + [f"cov_q{i}" for i in range(4)]
    + [f"cov_s{i}" for i in range(3)]
    + ["alpha0"]
    + [f"{channel}_sh{k}" for channel in "rgb" for k in range(NUM_SH_COEFFS)]
)
"""The 59 float32 columns of a trained scene, in the order they are written."""

FORMAT_VERSION = "1"
FORMAT_VERSION_KEY = "taichi_3dgs.format_version"
COLOR_ACTIVATION_KEY = "taichi_3dgs.color_activation"
SH_DEGREE_KEY = "taichi_3dgs.sh_degree"
METADATA_KEYS = (FORMAT_VERSION_KEY, COLOR_ACTIVATION_KEY, SH_DEGREE_KEY)
# Optional (absent in files of older versions, which read as False), so not in METADATA_KEYS.
ANTIALIASED_KEY = "taichi_3dgs.antialiased"
# Optional: JSON {"image-downscale-factor": int, "max-image-long-side": int} (the config's keys).
TRAINING_RESOLUTION_KEY = "taichi_3dgs.training_resolution"


@dataclass(frozen=True)
class TrainingResolution:
    """The image size a scene was trained at, as the training config's two keys give it: every
    image on disk divided by `image_downscale_factor`, then scaled down further until its long
    side is at most `max_image_long_side` (`taichi_3dgs.data.views.target_size`).

    Attributes:
        image_downscale_factor: integer >= 1 (`image-downscale-factor`).
        max_image_long_side: pixels, >= 1 (`max-image-long-side`).
    """

    image_downscale_factor: int
    max_image_long_side: int

    def to_metadata(self) -> bytes:
        """The metadata value: JSON with the config's key names."""
        return json.dumps({"image-downscale-factor": self.image_downscale_factor,
                           "max-image-long-side": self.max_image_long_side}).encode()

    @classmethod
    def from_metadata(cls, value: bytes, where: str) -> "TrainingResolution":
        """Parse `to_metadata`'s value.

        Raises:
            ValueError: not that JSON object of two integers >= 1; the message names `where`.
        """
        expected = ('expected JSON {"image-downscale-factor": N, "max-image-long-side": M} with integers '
                    'N, M >= 1')
        try:
            data = json.loads(value)
            factor, long_side = data["image-downscale-factor"], data["max-image-long-side"]
        except (ValueError, TypeError, KeyError):
            raise ValueError(f"{where}: metadata '{TRAINING_RESOLUTION_KEY}' is "
                             f"{value.decode(errors='replace')!r}; {expected}") from None
        if not all(type(number) is int and number >= 1 for number in (factor, long_side)) or len(data) != 2:
            raise ValueError(f"{where}: metadata '{TRAINING_RESOLUTION_KEY}' is "
                             f"{value.decode(errors='replace')!r}; {expected}")
        return cls(factor, long_side)

# The original project wrote no metadata; its scenes used sigmoid colour and all 16 SH coefficients.
LEGACY_COLOR_ACTIVATION = "sigmoid"
LEGACY_SH_DEGREE = MAX_SH_DEGREE

# Parquet stores quaternions x, y, z, w; GaussianScene keeps w, x, y, z.
_WXYZ_TO_XYZW = [1, 2, 3, 0]
_XYZW_TO_WXYZ = [3, 0, 1, 2]


def is_trained_scene_parquet(path: str | os.PathLike) -> bool:
    """True when the parquet file at `path` has every trained-scene column (reads the schema only).

    Such a file is loaded as a trained scene, not re-initialised from its x, y, z (docs/FORMATS.md).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is not a readable parquet file (names the file).
    """
    names = set(_open_parquet(Path(path)).schema_arrow.names)
    return all(column in names for column in TRAINED_SCENE_COLUMNS)


def read_scene_parquet(path: str | os.PathLike) -> GaussianScene:
    """Read a trained-scene parquet file into a `GaussianScene` on the CPU.

    Columns beyond the trained-scene ones are ignored; numeric columns of another dtype are cast
    to float32. Quaternions are returned as stored (w, x, y, z order, not normalised). A file with
    zero rows is an empty scene (N = 0), also when its columns have no type (Arrow `null`, as
    pandas writes an empty frame).

    Args:
        path: a parquet file written by `write_scene_parquet` or by the original Taichi project.

    Returns:
        GaussianScene with `color_activation` and `sh_degree` from the file metadata, or
        `sigmoid` / 3 for an original-project file without metadata, and `antialiased` from the
        `taichi_3dgs.antialiased` key (False without it).

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: unreadable file, missing trained-scene columns, a non-numeric column, a NaN/inf
            value (naming column and row), incomplete or invalid metadata, or non-zero SH bands
            above the stored degree; the message names the file.
    """
    path = Path(path)
    parquet_file = _open_parquet(path)
    names = set(parquet_file.schema_arrow.names)
    missing = [column for column in TRAINED_SCENE_COLUMNS if column not in names]
    if missing:
        shown = ", ".join(missing[:6]) + (", ..." if len(missing) > 6 else "")
        raise ValueError(
            f"{path}: missing trained-scene column(s) {shown} ({len(missing)} of "
            f"{len(TRAINED_SCENE_COLUMNS)}); expected x, y, z, cov_q0..cov_q3, cov_s0..cov_s2, "
            f"alpha0, r_sh0..r_sh15, g_sh0..g_sh15, b_sh0..b_sh15")
    metadata = parquet_file.metadata.metadata or {}
    color_activation, sh_degree = _read_metadata(path, metadata)
    antialiased = _read_antialiased(path, metadata)
    try:
        table = parquet_file.read(columns=TRAINED_SCENE_COLUMNS)
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"{path}: cannot read the parquet data ({error})") from error
    columns = [checked_float32(_column_values(table, name), str(path), f"column '{name}'")
               for name in TRAINED_SCENE_COLUMNS]
    # [N, 59] in TRAINED_SCENE_COLUMNS order: 0:3 means, 3:7 quaternion x, y, z, w,
    # 7:10 log-scales, 10 opacity logit, 11: SH channel-major (16 R, 16 G, 16 B).
    values = torch.from_numpy(np.stack(columns, axis=1))
    sh = values[:, 11:]
    scene = GaussianScene(
        means=values[:, 0:3].contiguous(),
        quats=values[:, 3:7][:, _XYZW_TO_WXYZ].contiguous(),
        log_scales=values[:, 7:10].contiguous(),
        opacity_logits=values[:, 10].contiguous(),
        sh_coeffs=sh.reshape(-1, 3, NUM_SH_COEFFS).transpose(1, 2).contiguous(),
        sh_degree=sh_degree,
        color_activation=color_activation,
        antialiased=antialiased,
    )
    try:
        scene.validate()
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error
    return scene


def write_scene_parquet(path: str | os.PathLike, scene: GaussianScene,
                        training_resolution: TrainingResolution | None = None) -> None:
    """Write `scene` as a trained-scene parquet file, atomically, with the format metadata.

    Columns in `TRAINED_SCENE_COLUMNS` order, float32; quaternions stored x, y, z, w; file-level
    key-value metadata `taichi_3dgs.format_version = "1"`, `taichi_3dgs.color_activation`,
    `taichi_3dgs.sh_degree` and `taichi_3dgs.antialiased` ("true" / "false"), and
    `taichi_3dgs.training_resolution` when `training_resolution` is given (docs/FORMATS.md).
    Tensors may be on any device.

    Raises:
        ValueError: `scene.validate()` fails; nothing is written.
        OSError: the file cannot be written; the destination is left untouched.
    """
    scene.validate()
    n = scene.num_gaussians
    sh = scene.sh_coeffs.detach().cpu()
    values = torch.cat([
        scene.means.detach().cpu(),
        scene.quats.detach().cpu()[:, _WXYZ_TO_XYZW],
        scene.log_scales.detach().cpu(),
        scene.opacity_logits.detach().cpu().reshape(n, 1),
        sh.transpose(1, 2).reshape(n, 3 * NUM_SH_COEFFS),  # channel-major: all R, then G, then B
    ], dim=1)
    frame = pd.DataFrame(values.numpy(), columns=TRAINED_SCENE_COLUMNS)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    metadata = dict(table.schema.metadata or {})
    metadata.update({
        FORMAT_VERSION_KEY.encode(): FORMAT_VERSION.encode(),
        COLOR_ACTIVATION_KEY.encode(): scene.color_activation.encode(),
        SH_DEGREE_KEY.encode(): str(scene.sh_degree).encode(),
        ANTIALIASED_KEY.encode(): str(scene.antialiased).lower().encode(),
    })
    if training_resolution is not None:
        metadata[TRAINING_RESOLUTION_KEY.encode()] = training_resolution.to_metadata()
    table = table.replace_schema_metadata(metadata)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_training_resolution(path: str | os.PathLike) -> TrainingResolution | None:
    """The training resolution a trained-scene file records, or None when it records none (a
    PLY file, an older or the original project's parquet file). Reads the metadata only.

    Raises:
        FileNotFoundError: `path` does not exist.
        ValueError: unreadable parquet file, or a malformed value (names the file and the key).
    """
    path = Path(path)
    if path.suffix.lower() != ".parquet":
        return None
    value = (_open_parquet(path).metadata.metadata or {}).get(TRAINING_RESOLUTION_KEY.encode())
    return None if value is None else TrainingResolution.from_metadata(value, str(path))


def _open_parquet(path: Path) -> pq.ParquetFile:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such parquet file")
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as error:
        raise ValueError(f"{path}: not a readable parquet file ({error})") from error


def _column_values(table: pa.Table, name: str) -> np.ndarray:
    """Column `name` as a numpy array; a zero-row column of Arrow type null as float32, the type
    of a column that held nothing to infer one from (pandas writes `DataFrame(columns=...)` so)."""
    column = table.column(name)
    if table.num_rows == 0 and pa.types.is_null(column.type):
        return np.zeros(0, dtype=np.float32)
    return column.to_numpy()


def _read_metadata(path: Path, metadata: dict[bytes, bytes]) -> tuple[str, int]:
    """(color_activation, sh_degree) from the file's key-value metadata, or the legacy defaults."""
    found = {key: metadata[key.encode()].decode() for key in METADATA_KEYS
             if key.encode() in metadata}
    if not found:
        return LEGACY_COLOR_ACTIVATION, LEGACY_SH_DEGREE
    for key in METADATA_KEYS:
        if key not in found:
            raise ValueError(f"{path}: file metadata has {sorted(found)} but not '{key}'; "
                             f"expected all of {list(METADATA_KEYS)} or none (original project)")
    if found[FORMAT_VERSION_KEY] != FORMAT_VERSION:
        raise ValueError(f"{path}: metadata '{FORMAT_VERSION_KEY}' is "
                         f"{found[FORMAT_VERSION_KEY]!r}, expected {FORMAT_VERSION!r}")
    color_activation = found[COLOR_ACTIVATION_KEY]
    if color_activation not in COLOR_ACTIVATIONS:
        raise ValueError(f"{path}: metadata '{COLOR_ACTIVATION_KEY}' is {color_activation!r}, "
                         f"expected one of {list(COLOR_ACTIVATIONS)}")
    sh_degree = found[SH_DEGREE_KEY]
    if sh_degree not in [str(degree) for degree in range(MAX_SH_DEGREE + 1)]:
        raise ValueError(f"{path}: metadata '{SH_DEGREE_KEY}' is {sh_degree!r}, expected an "
                         f"integer 0..{MAX_SH_DEGREE}")
    return color_activation, int(sh_degree)


def _read_antialiased(path: Path, metadata: dict[bytes, bytes]) -> bool:
    """The `taichi_3dgs.antialiased` metadata value; False when the file has no such key."""
    value = metadata.get(ANTIALIASED_KEY.encode())
    if value is None:
        return False
    if value not in (b"true", b"false"):
        raise ValueError(f"{path}: metadata '{ANTIALIASED_KEY}' is {value.decode(errors='replace')!r}, "
                         f"expected 'true' or 'false'")
    return value == b"true"
