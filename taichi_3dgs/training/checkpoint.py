"""Resumable checkpoints: everything a run needs to continue exactly where it stopped.

A checkpoint holds the step, the parameters, the Adam state, the densification strategy's running
state, the view sampler's stack, the run's random generator state and the best validation score.
Files are `<output-model-dir>/checkpoints/checkpoint_<step>.pt` (torch.save, written atomically);
only the newest is kept.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import torch

from taichi_3dgs.atomic_io import atomic_path

CHECKPOINT_FORMAT = "taichi_3dgs.checkpoint/1"
_NAME = re.compile(r"checkpoint_(\d+)\.pt$")


def checkpoint_dir(output_model_dir: Path) -> Path:
    """Folder of a run's checkpoints."""
    return Path(output_model_dir) / "checkpoints"


def save_checkpoint(output_model_dir: Path, step: int, payload: dict[str, Any]) -> Path:
    """Write `payload` (tensors on any device) as the checkpoint of `step`; delete older ones.

    Returns:
        The path written.
    """
    folder = checkpoint_dir(output_model_dir)
    path = folder / f"checkpoint_{step:07d}.pt"
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "step": step, **payload}, tmp)
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
    """Read a checkpoint onto `device`.

    Raises:
        ValueError: the file is not a taichi_3dgs checkpoint (message names the file).
    """
    try:
        payload = torch.load(path, map_location=device, weights_only=False)
    except Exception as exc:  # torch raises many types for a damaged file
        raise ValueError(f"{path}: cannot read checkpoint: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: not a taichi_3dgs checkpoint (expected format {CHECKPOINT_FORMAT})")
    return payload
