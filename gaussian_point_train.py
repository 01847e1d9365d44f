#!/usr/bin/env python3
"""Train a Gaussian scene: `gaussian_point_train.py --train_config config/x.yaml [--resume]`.

`--gen_template_only` writes the full default config to the --train_config path instead.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from taichi_3dgs.training.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
