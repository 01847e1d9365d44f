#!/usr/bin/env python3
"""Prepare a BlenderNeRF / NeRF-synthetic scene for training (train.json, val.json, ...).

The command `taichi-3dgs prepare-blender`; see taichi_3dgs/commands/prepare_blender.py."""
import sys

from taichi_3dgs.commands.prepare_blender import main

if __name__ == "__main__":
    sys.exit(main())
