#!/usr/bin/env python3
"""Import a scene file as a trained-scene parquet file (linear colour).

The command `taichi-3dgs import-ply`; see taichi_3dgs/commands/import_ply.py."""
import sys

from taichi_3dgs.commands.import_ply import main

if __name__ == "__main__":
    sys.exit(main())
