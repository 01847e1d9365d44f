"""Training: config, losses, densification strategies, evaluation, checkpoints and the loop
(module map: docs/LAYOUT.md).

Entry points: `load_train_config(path)` -> `TrainConfig`, `train(config, resume=False)`.
They are imported on first use, so `gaussian_point_train.py --help` (taichi_3dgs.train_cli)
answers before torch and Taichi load.
"""
import importlib

__all__ = ["ConfigError", "TrainConfig", "TrainResult", "load_train_config", "train"]
_LAZY = {"ConfigError": "taichi_3dgs.training.config", "TrainConfig": "taichi_3dgs.training.config",
         "load_train_config": "taichi_3dgs.training.config", "TrainResult": "taichi_3dgs.training.trainer",
         "train": "taichi_3dgs.training.trainer"}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'taichi_3dgs.training' has no attribute {name!r}")
