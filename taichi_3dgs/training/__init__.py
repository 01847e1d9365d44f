"""Training: config, losses, densification strategies, evaluation, checkpoints and the loop.

Entry points: `load_train_config(path)` -> `TrainConfig`, `train(config, resume=False)`.
"""
from taichi_3dgs.training.config import ConfigError, TrainConfig, load_train_config
from taichi_3dgs.training.trainer import TrainResult, train

__all__ = ["ConfigError", "TrainConfig", "TrainResult", "load_train_config", "train"]
