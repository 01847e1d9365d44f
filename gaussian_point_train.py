#!/usr/bin/env python3
"""Train a Gaussian scene: `gaussian_point_train.py --train_config config/x.yaml [--resume] [--KEY VALUE ...]`.

`--gen_template_only` writes the full default config to the --train_config path instead; any YAML
key can be overridden on the command line (taichi_3dgs/train_cli.py).
"""
import sys

from taichi_3dgs.train_cli import main

if __name__ == "__main__":
    sys.exit(main())
