#!/usr/bin/env python3
"""Prepare an Instant-NGP dataset for training: train.json, val.json, point_cloud.parquet, train_config.yaml.

The command `taichi-3dgs prepare-instant-ngp`; see taichi_3dgs/commands/prepare_instant_ngp.py."""
import sys

from taichi_3dgs.commands.prepare_instant_ngp import main

if __name__ == "__main__":
    sys.exit(main())
