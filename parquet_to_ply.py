#!/usr/bin/env python3
"""Export a trained scene as an official 3DGS PLY file or a compressed web format.

The command `taichi-3dgs export`; see taichi_3dgs/commands/export.py."""
import sys

from taichi_3dgs.commands.export import main

if __name__ == "__main__":
    sys.exit(main())
