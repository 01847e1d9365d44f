"""Resumable checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint holds the step, the parameters, the Adam state, the densification strategy's running
state, the view sampler's stack, the run's random generator state, the best validation score, the
effective config and a fingerprint of the train and val cameras. Files are
`<output-model-dir>/checkpoints/checkpoint_<step>.pt` (torch.save, written atomically); only the
newest is kept.

Resuming (`--resume`) checks that the checkpoint belongs to the run before anything is written:
every config key must be the one the checkpoint was written with, except `config.RESUMABLE_KEYS`
(fields marked `resume="may-change"`: the length of the run, when to evaluate, checkpoint and log,
and where to write), the section of the strategy not in use, and the camera JSON paths
(`config.CAMERA_KEYS`), whose content is compared instead (the cameras'
count, order, image names, poses, intrinsics and sizes), so a dataset folder may move.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import re
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence

import torch
import yaml

from taichi_3dgs.atomic_io import atomic_path
from taichi_3dgs.data.cameras import CameraRecord
from taichi_3dgs.scene.model import PARAMETER_NAMES, GaussianModel
from taichi_3dgs.training.config import (
    CAMERA_KEYS, RESUMABLE_KEYS, ConfigError, TrainConfig, config_to_yaml, parse_train_config, strategy_sections,
)
from taichi_3dgs.training.config_loader import flatten

CHECKPOINT_FORMAT = "taichi_3dgs.checkpoint/2"
_NAME = re.compile(r"checkpoint_(\d+)\.pt$")

# Keys every checkpoint of this format holds, with their type and what they are.
_REQUIRED_KEYS = {
    "step": (int, "the last completed step"),
    "model": (dict, "the parameter tensors by name"),
    "color_activation": (str, "the colour activation"),
    "active_sh_degree": (int, "the SH degree rendered"),
    "initial_sh_degree": (int, "the SH degree the run started at"),
    "optimizer": (dict, "Adam's state_dict"),
    "strategy": (dict, "the densification strategy's state"),
    "sampler": (dict, "the view sampler's state"),
    "generator": (torch.Tensor, "the random generator's state"),
    "best": (dict, "the best evaluation, {psnr, step}"),
    "config_yaml": (str, "the effective config's YAML text"),
    "cameras": (dict, "the cameras' fingerprints, {train, val}"),
}


def checkpoint_dir(output_model_dir: Path) -> Path:
    """Folder of a run's checkpoints."""
    return Path(output_model_dir) / "checkpoints"


def camera_fingerprint(records: Sequence[CameraRecord]) -> dict[str, Any]:
    """What identifies a run's cameras: their count and a SHA-256 of their ordered content.

    The digest covers, per record in order, the image and mask file names (not their folders, so
    a dataset may move), K, T_pointcloud_camera, width and height, and for a record with a depth
    map its file name, depth_type and depth_scale; not the pixels.

    Returns:
        {"count": int, "sha256": hex str}.
    """
    content = [
        [Path(r.image_path).name, None if r.mask_path is None else Path(r.mask_path).name,
         r.K.tolist(), r.T_pointcloud_camera.tolist(), r.width, r.height]
        # Appended only when present: records without depth keep the digests of older checkpoints.
        + ([] if r.depth_path is None else [Path(r.depth_path).name, r.depth_type, r.depth_scale])
        for r in records
    ]
    digest = hashlib.sha256(json.dumps(content).encode()).hexdigest()
    return {"count": len(records), "sha256": digest}


def save_checkpoint(output_model_dir: Path, step: int, payload: dict[str, Any]) -> Path:
    """Write `payload` (tensors on any device) as the checkpoint of `step`; delete older ones.

    `payload` holds every key of the format but `format` and `step` (docs/FORMATS.md).

    Returns:
        The path written.
    """
    folder = checkpoint_dir(output_model_dir)
    path = folder / f"checkpoint_{step:07d}.pt"
    # Serialised in memory first: torch.save's own file writer reports a full disk as an opaque
    # RuntimeError, a plain write as the OSError that atomic_path names.
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, "step": step, **payload}, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())
    for old in folder.glob("checkpoint_*.pt"):
        if old != path and _NAME.search(old.name):
            old.unlink()
    return path


def latest_checkpoint(output_model_dir: Path) -> Optional[Path]:
    """The checkpoint with the highest step in the run's folder, or None."""
    found = [(int(m.group(1)), p) for p in checkpoint_dir(output_model_dir).glob("checkpoint_*.pt")
             if (m := _NAME.search(p.name))]
    return max(found)[1] if found else None


def load_checkpoint(path: Path, device: torch.device | str) -> dict[str, Any]:
    """Read a checkpoint onto `device` and check that it holds every key of the format.

    Raises:
        ValueError: the file is not a readable torch file, not a taichi_3dgs checkpoint, of an older
            format, or misses a key or has one of the wrong type (the message names the file and
            the key).
    """
    try:
        payload = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ValueError(f"{path}: cannot read checkpoint: {exc}") from None
    found = payload.get("format") if isinstance(payload, dict) else None
    if not (isinstance(found, str) and found.startswith("taichi_3dgs.checkpoint/")):
        raise ValueError(f"{path}: not a taichi_3dgs checkpoint (expected format {CHECKPOINT_FORMAT})")
    if found != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: checkpoint format {found!r} was written by an older taichi_3dgs (this one "
                         f"reads {CHECKPOINT_FORMAT!r}); start a new run in another output-model-dir")
    for key, (kind, meaning) in _REQUIRED_KEYS.items():
        if key not in payload:
            raise ValueError(f"{path}: checkpoint has no key '{key}' ({meaning}); the file is damaged")
        if not isinstance(payload[key], kind) or (kind is int and isinstance(payload[key], bool)):
            raise ValueError(f"{path}: checkpoint key '{key}' is a {type(payload[key]).__name__}; expected "
                             f"{meaning} ({kind.__name__})")
    for key, inner in (("best", ("psnr", "step")), ("cameras", ("train", "val")), ("model", PARAMETER_NAMES)):
        missing = [name for name in inner if name not in payload[key]]
        if missing:
            raise ValueError(f"{path}: checkpoint key '{key}' has no '{missing[0]}'; the file is damaged")
    return payload


def model_from_checkpoint(payload: dict[str, Any], path: Path, device: torch.device | str) -> GaussianModel:
    """The Gaussians of a `load_checkpoint` payload, on `device`.

    Raises:
        ValueError: the tensors do not make a model (wrong shapes, unknown colour activation), hold
            a non-finite value or no Gaussian; the message names the file.
    """
    tensors = payload["model"]
    for name in PARAMETER_NAMES:
        value = tensors[name]
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            row = int((~torch.isfinite(value.reshape(value.shape[0], -1))).any(dim=1).nonzero()[0])
            raise ValueError(f"{path}: checkpoint key 'model' has a non-finite value in '{name}' (row {row}); the "
                             "file is damaged (the trainer never saves a diverged scene): start a new run in another "
                             "output-model-dir")
    with restoring(path, "model"):
        model = GaussianModel(
            tensors["means"], tensors["quats"], tensors["log_scales"], tensors["opacity_logits"],
            torch.cat([tensors["sh_dc"], tensors["sh_rest"]], dim=1), payload["color_activation"],
            payload["active_sh_degree"],
        ).to(device)
    if model.num_gaussians == 0:
        raise ValueError(f"{path}: checkpoint key 'model' holds no Gaussian (an empty scene); start a new run")
    return model


@contextlib.contextmanager
def restoring(path: Path, key: str) -> Iterator[None]:
    """Turn the errors of restoring checkpoint key `key` (a state_dict that does not fit) into a
    ValueError naming the file and the key."""
    try:
        yield
    except (KeyError, IndexError, TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(f"{path}: checkpoint key '{key}' does not fit this run ({type(exc).__name__}: "
                         f"{exc})") from None


def _settings(config: TrainConfig, strategy: str) -> dict[str, Any]:
    """The dotted YAML keys of `config` that must not change on resume for a run of `strategy`,
    with their values."""
    ignored = RESUMABLE_KEYS + tuple(CAMERA_KEYS.values()) + tuple(
        section for name, section in strategy_sections().items() if name != strategy)
    flat = flatten(yaml.safe_load(config_to_yaml(config, comments=False)))
    return {key: value for key, value in flat.items()
            if not any(key == k or key.startswith(k + ".") for k in ignored)}


def check_resumable(payload: dict[str, Any], path: Path, config: TrainConfig, cameras: dict[str, dict],
                    source: str) -> None:
    """Check that the checkpoint `payload` (read from `path`) was written by a run of `config`.

    Args:
        cameras: {"train": camera_fingerprint(...), "val": ...} of the cameras `config` names.
        source: the config's name, for messages.

    Raises:
        ValueError: the checkpoint's config cannot be read, its cameras differ from `config`'s,
            or a key outside RESUMABLE_KEYS differs; the message names the file and every
            differing key with both values.
    """
    try:
        written_yaml = yaml.safe_load(payload["config_yaml"])
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ValueError(f"{path}: checkpoint key 'config_yaml' (the config the run was started with) is not "
                         f"valid YAML{where}: {problem}; the checkpoint is damaged: start a new run in another "
                         "output-model-dir") from None
    try:
        written = parse_train_config(written_yaml, f"{path}: key 'config_yaml'", path.parent)
    except ConfigError as exc:
        raise ValueError(f"{exc}; the checkpoint was written by another taichi_3dgs version or is damaged: "
                         "start a new run in another output-model-dir") from None
    for split, key in CAMERA_KEYS.items():
        old, new = payload["cameras"][split], cameras[split]
        if old == new:
            continue
        json_path = getattr(config, key.replace("-", "_"))
        count = old.get("count") if isinstance(old, dict) else None
        if count != new["count"]:
            raise ValueError(f"checkpoint {path} was written with {count} {split} cameras, "
                             f"{source} key '{key}' ({json_path}) has {new['count']}; resume with the cameras "
                             "it was trained on, or start a new run in another output-model-dir")
        raise ValueError(f"checkpoint {path} was written with other {split} cameras than {source} key "
                         f"'{key}' ({json_path}): same count ({new['count']}) but image names, poses, "
                         "intrinsics or sizes differ; start a new run in another output-model-dir")
    # Both sides drop the section of the strategy the run does not use; a change of strategy is
    # itself a difference.
    old_settings, new_settings = _settings(written, config.strategy), _settings(config, config.strategy)
    differences = [f"{key} {old_settings.get(key)!r} ({source} says {new_settings.get(key)!r})"
                   for key in sorted(set(old_settings) | set(new_settings))
                   if old_settings.get(key) != new_settings.get(key)]
    if differences:
        raise ValueError(f"checkpoint {path} was written with {'; '.join(differences)}; resume with the "
                         f"settings it was written with, or start a new run in another output-model-dir "
                         f"(keys that may change on resume: {', '.join(RESUMABLE_KEYS)})")
