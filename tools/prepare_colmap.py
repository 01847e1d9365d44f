#!/usr/bin/env python3
"""Prepare a COLMAP dataset for training: train.json, val.json, point_cloud.parquet, train_config.yaml.

The command `taichi-3dgs prepare-colmap`; see taichi_3dgs/commands/prepare_colmap.py."""
import sys

from taichi_3dgs.commands.prepare_colmap import main

if __name__ == "__main__":
    sys.exit(main())
